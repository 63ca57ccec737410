import { randomBytes } from "node:crypto";
import { deliverWebhookAndRecord } from "../hook-deliveries.js";
import { appJson, hookDeliveryJson, installationJson, repositoryFacts, repositoryJson } from "../rest-representations.js";
import { githubError, json, notFound, repositoryOf, type RouteContext, type RouteTable } from "../route-context.js";
import type { MintedToken, PermissionLevel, StandInRepository } from "../stand-in-state.js";

const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

/** Operations GitHub authenticates with the app's JWT: the app, its installations, tokens and webhook deliveries. */
export const appRoutes: RouteTable = {
  "apps/get-authenticated": { auth: "app", handle: (context) => json(200, appJson(context.urls, context.state)) },

  "apps/get-installation": {
    auth: "app",
    handle(context) {
      const installation = context.state.installations.get(Number(context.params.installation_id));
      return installation ? json(200, installationJson(context.urls, context.state, installation)) : notFound("https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app");
    },
  },

  "apps/get-repo-installation": {
    auth: "app",
    handle(context) {
      const installation = context.state.installations.get(repositoryOf(context).installationId);
      return installation ? json(200, installationJson(context.urls, context.state, installation)) : notFound();
    },
  },

  "apps/create-installation-access-token": { auth: "app", handle: createInstallationAccessToken },

  "apps/list-webhook-deliveries": {
    auth: "app",
    handle(context) {
      const perPage = Math.min(Math.max(Number(context.query.get("per_page") ?? 30) || 30, 1), 100);
      const cursor = context.query.get("cursor");
      const status = context.query.get("status");
      const newestFirst = [...context.state.hookDeliveries]
        .sort((a, b) => b.id - a.id)
        .filter((d) => status === null || (status === "success" ? d.statusCode >= 200 && d.statusCode < 300 : !(d.statusCode >= 200 && d.statusCode < 300)))
        .filter((d) => cursor === null || d.id < Number(cursor));
      const page = newestFirst.slice(0, perPage);
      const headers: Record<string, string> = {};
      if (newestFirst.length > perPage && page.length > 0) {
        const next = new URLSearchParams({ per_page: String(perPage), cursor: String(page[page.length - 1]?.id) });
        if (status !== null) next.set("status", status);
        headers.link = `<${context.urls.api}/app/hook/deliveries?${next.toString()}>; rel="next"`;
      }
      return json(200, page.map((d) => hookDeliveryJson(d)), headers);
    },
  },

  "apps/get-webhook-delivery": {
    auth: "app",
    handle(context) {
      const delivery = context.state.hookDeliveries.find((d) => d.id === Number(context.params.delivery_id));
      return delivery ? json(200, hookDeliveryJson(delivery, { full: true })) : notFound();
    },
  },

  "apps/redeliver-webhook-delivery": {
    auth: "app",
    handle(context) {
      const delivery = context.state.hookDeliveries.find((d) => d.id === Number(context.params.delivery_id));
      if (!delivery) return notFound();
      // GitHub accepts the attempt and redelivers afterwards, with the same guid.
      context.background(
        deliverWebhookAndRecord(context.state, { url: delivery.url, secret: delivery.secret, event: delivery.event, payload: delivery.payload, guid: delivery.guid, redelivery: true }).then((redelivered) =>
          context.emit("hook-delivery", { delivery: redelivered }),
        ),
      );
      return json(202, {});
    },
  },
};

function createInstallationAccessToken(context: RouteContext) {
  const { state, body } = context;
  const installationId = Number(context.params.installation_id);
  const installation = state.installations.get(installationId);
  if (!installation) return notFound("https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app");
  const installed = [...state.repositories.values()].filter((r) => r.installationId === installationId);

  const names = Array.isArray(body.repositories) ? (body.repositories as string[]) : undefined;
  const ids = Array.isArray(body.repository_ids) ? (body.repository_ids as number[]) : undefined;
  let scope: StandInRepository[] = installed;
  if (names !== undefined || ids !== undefined) {
    const byName = (names ?? []).map((name) => installed.find((r) => r.name.toLowerCase() === String(name).toLowerCase()));
    const byId = (ids ?? []).map((id) => installed.find((r) => r.id === id));
    if ([...byName, ...byId].some((r) => r === undefined)) {
      return githubError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.", { documentation_url: "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app" });
    }
    scope = [...new Set([...byName, ...byId] as StandInRepository[])];
  }

  const requested = body.permissions as Record<string, string> | undefined;
  let permissions: Record<string, PermissionLevel> = { ...installation.permissions };
  if (requested !== undefined) {
    const rank = (level: string | undefined): number => (level === "write" ? 2 : level === "read" ? 1 : 0);
    const denied = Object.entries(requested).filter(([name, level]) => rank(level) > rank(installation.permissions[name]));
    if (denied.length > 0) {
      return githubError(422, "The permissions requested are not granted to this installation.", { documentation_url: "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app" });
    }
    permissions = Object.fromEntries(Object.entries(requested).map(([name, level]) => [name, level as PermissionLevel]));
    // GitHub always grants metadata:read with any repository permission.
    if (permissions.metadata === undefined && installation.permissions.metadata !== undefined) permissions.metadata = "read";
  }

  const now = Date.now();
  const token: MintedToken = {
    token: `ghs_${randomBytes(27).toString("base64url").replace(/[-_]/g, "x").slice(0, 36)}`,
    installationId,
    ...(names !== undefined ? { repositories: names } : {}),
    ...(ids !== undefined ? { repositoryIds: ids } : {}),
    ...(requested !== undefined ? { requestedPermissions: requested } : {}),
    permissions,
    repositoryScope: scope.map((r) => r.id),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + TOKEN_LIFETIME_MS).toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  state.tokens.push(token);
  const limited = names !== undefined || ids !== undefined;
  return json(201, {
    token: token.token,
    expires_at: token.expiresAt,
    permissions,
    repository_selection: limited ? "selected" : "all",
    ...(limited ? { repositories: scope.map((r) => repositoryJson(context.urls, repositoryFacts(state, r))) } : {}),
  });
}
