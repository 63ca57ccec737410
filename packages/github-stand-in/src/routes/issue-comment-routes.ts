import { issueCommentJson, reactionJson } from "../rest-representations.js";
import { actorOf, json, notFound, paginate, repositoryOf, repositoryPath, validationFailed, type RouteContext, type RouteResponse, type RouteTable } from "../route-context.js";
import type { RecordedComment, RecordedReaction } from "../stand-in-state.js";

/** GitHub's limit on a comment body. */
const MAX_COMMENT_LENGTH = 65_536;

/** Comments on pull requests go through the issues API; either permission reaches them. */
const READ = ["issues:read", "pull_requests:read"] as const;
const WRITE = ["issues:write", "pull_requests:write"] as const;

/** Issue and pull request comments, and reactions on them. */
export const issueCommentRoutes: RouteTable = {
  "issues/create-comment": {
    auth: "installation",
    permission: [...WRITE],
    handle(context) {
      const repository = repositoryOf(context);
      const number = Number(context.params.issue_number);
      if (!issueExists(context, number)) return notFound("https://docs.github.com/rest/issues/comments#create-an-issue-comment", `no issue or pull request #${number} in ${repository.fullName}; register it with addPullRequest or addIssue`);
      const body = String(context.body.body);
      if (body.length > MAX_COMMENT_LENGTH) return validationFailed("IssueComment", "body", `body is too long (maximum is ${MAX_COMMENT_LENGTH} characters)`);
      const now = new Date().toISOString();
      const comment: RecordedComment = { id: context.state.nextId("comment"), owner: repository.owner, repo: repository.name, issueNumber: number, body, user: actorOf(context), createdAt: now, updatedAt: now, previousBodies: [] };
      context.state.comments.push(comment);
      context.emit("comment", { comment });
      return json(201, issueCommentJson(context.urls, context.state, comment));
    },
  },

  "issues/update-comment": {
    auth: "installation",
    permission: [...WRITE],
    handle(context) {
      const comment = findComment(context);
      if (!comment) return notFound("https://docs.github.com/rest/issues/comments#update-an-issue-comment", COMMENT_HINT);
      const body = String(context.body.body);
      if (body.length > MAX_COMMENT_LENGTH) return validationFailed("IssueComment", "body", `body is too long (maximum is ${MAX_COMMENT_LENGTH} characters)`);
      comment.previousBodies.push(comment.body);
      comment.body = body;
      comment.updatedAt = new Date().toISOString();
      context.emit("comment", { comment });
      return json(200, issueCommentJson(context.urls, context.state, comment));
    },
  },

  "issues/get-comment": {
    auth: "installation",
    permission: [...READ],
    handle(context) {
      const comment = findComment(context);
      return comment ? json(200, issueCommentJson(context.urls, context.state, comment)) : notFound(undefined, COMMENT_HINT);
    },
  },

  "issues/list-comments": {
    auth: "installation",
    permission: [...READ],
    handle(context) {
      const repository = repositoryOf(context);
      const number = Number(context.params.issue_number);
      if (!issueExists(context, number)) return notFound(undefined, `no issue or pull request #${number} in ${repository.fullName}; register it with addPullRequest or addIssue`);
      const since = context.query.get("since");
      const comments = context.state.comments.filter((c) => c.owner === repository.owner && c.repo === repository.name && c.issueNumber === number && (since === null || c.updatedAt >= since));
      const { page, headers } = paginate(context, repositoryPath(context, `/issues/${number}/comments`), comments);
      return json(200, page.map((c) => issueCommentJson(context.urls, context.state, c)), headers);
    },
  },

  "reactions/create-for-issue-comment": {
    auth: "installation",
    permission: [...WRITE],
    handle(context): RouteResponse {
      const comment = findComment(context);
      if (!comment) return notFound(undefined, COMMENT_HINT);
      const user = actorOf(context);
      const content = String(context.body.content);
      // The same user reacting twice with the same content gets the existing reaction back with 200.
      const existing = context.state.reactions.find((r) => r.commentId === comment.id && r.content === content && r.user.id === user.id);
      if (existing) return json(200, reactionJson(context.urls, existing));
      const reaction: RecordedReaction = { id: context.state.nextId("reaction"), owner: comment.owner, repo: comment.repo, commentId: comment.id, content, user, createdAt: new Date().toISOString() };
      context.state.reactions.push(reaction);
      context.emit("reaction", { reaction });
      return json(201, reactionJson(context.urls, reaction));
    },
  },

  "reactions/list-for-issue-comment": {
    auth: "installation",
    permission: [...READ],
    handle(context) {
      const comment = findComment(context);
      if (!comment) return notFound(undefined, COMMENT_HINT);
      const content = context.query.get("content");
      const reactions = context.state.reactions.filter((r) => r.commentId === comment.id && (content === null || r.content === content));
      const { page, headers } = paginate(context, repositoryPath(context, `/issues/comments/${comment.id}/reactions`), reactions);
      return json(200, page.map((r) => reactionJson(context.urls, r)), headers);
    },
  },
};

function issueExists(context: RouteContext, number: number): boolean {
  const repository = repositoryOf(context);
  const same = (p: { owner: string; repo: string; number: number }): boolean => p.owner === repository.owner && p.repo === repository.name && p.number === number;
  return context.state.pullRequests.some(same) || context.state.issues.some(same);
}

const COMMENT_HINT = "no such comment; a comment a webhook refers to must be registered with addIssueComment (pass its id to issueCommentPayload)";

function findComment(context: RouteContext): RecordedComment | undefined {
  const repository = repositoryOf(context);
  const id = Number(context.params.comment_id);
  return context.state.comments.find((c) => c.id === id && c.owner === repository.owner && c.repo === repository.name);
}
