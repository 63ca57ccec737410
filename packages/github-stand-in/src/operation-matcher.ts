import type { GitHubOpenApiSpec, OpenApiOperation } from "./openapi-spec.js";

/** An operation of the description that a concrete request path matched. */
export interface MatchedOperation {
  method: string;
  /** The description's path template, e.g. `/repos/{owner}/{repo}/check-runs`. */
  template: string;
  operation: OpenApiOperation;
  /** Decoded path parameters; a multi-segment parameter (`x-multi-segment`) keeps its slashes. */
  pathParams: Record<string, string>;
}

/** The answer for a request: the operation, or whether the path exists for other methods. */
export type OperationMatch =
  | { found: true; match: MatchedOperation }
  | { found: false; pathExists: boolean; allowedMethods: string[] };

/** Finds the description's operation for a method and concrete path. */
export interface OperationMatcher {
  match(method: string, path: string): OperationMatch;
  /** Number of path templates indexed. */
  readonly pathCount: number;
}

interface TrieNode {
  literals: Map<string, TrieNode>;
  params: Array<{ name: string; multiSegment: boolean; node: TrieNode }>;
  /** Set on the node where a template ends. */
  end?: { template: string; operations: Map<string, OpenApiOperation> };
}

/**
 * Indexes every path of the description in a segment trie. Literal segments win over
 * parameters (so `/repos/{o}/{r}/check-runs/{id}` and `/repos/{o}/{r}/commits/{ref}/check-runs`
 * never mix), and parameters GitHub marks `x-multi-segment` (`{path}`, `{ref}`, `{branch}`)
 * may span several segments, as they do on github.com.
 *
 * @example
 * const matcher = createOperationMatcher({ spec });
 * matcher.match("GET", "/repos/acme/web/contents/.github%2Fslipway.yml");
 */
export function createOperationMatcher(options: { spec: GitHubOpenApiSpec }): OperationMatcher {
  const { spec } = options;
  const root = newNode();
  for (const [template, item] of Object.entries(spec.paths)) {
    const multiSegmentNames = new Set<string>();
    for (const operation of Object.values(item)) {
      for (const parameter of operation.parameters ?? []) {
        const resolved = "$ref" in parameter ? spec.components.parameters[parameter.$ref.split("/").pop() ?? ""] : parameter;
        if (resolved?.in === "path" && (resolved["x-multi-segment"] === true || resolved.schema?.["x-multi-segment"] === true)) {
          multiSegmentNames.add(resolved.name);
        }
      }
    }
    let node = root;
    for (const segment of splitPath(template)) {
      const param = /^\{([^}]+)\}$/.exec(segment)?.[1];
      if (param === undefined) {
        let next = node.literals.get(segment);
        if (!next) node.literals.set(segment, (next = newNode()));
        node = next;
      } else {
        const multiSegment = multiSegmentNames.has(param);
        let entry = node.params.find((p) => p.name === param && p.multiSegment === multiSegment);
        if (!entry) node.params.push((entry = { name: param, multiSegment, node: newNode() }));
        node = entry.node;
      }
    }
    node.end = { template, operations: new Map(Object.entries(item).map(([method, op]) => [method.toUpperCase(), op])) };
  }

  return {
    pathCount: Object.keys(spec.paths).length,
    match(method, path) {
      const segments = splitPath(path);
      const upper = method.toUpperCase();
      // First look for a template that has this method; otherwise report which methods the path has.
      const withMethod = walk(root, segments, 0, {}, (end) => end.operations.has(upper));
      if (withMethod) {
        const operation = withMethod.end.operations.get(upper) as OpenApiOperation;
        return { found: true, match: { method: upper, template: withMethod.end.template, operation, pathParams: withMethod.params } };
      }
      const anyMethod = walk(root, segments, 0, {}, () => true);
      return { found: false, pathExists: anyMethod !== undefined, allowedMethods: anyMethod ? [...anyMethod.end.operations.keys()] : [] };
    },
  };
}

type Found = { end: NonNullable<TrieNode["end"]>; params: Record<string, string> };

function walk(node: TrieNode, segments: string[], index: number, params: Record<string, string>, accept: (end: NonNullable<TrieNode["end"]>) => boolean): Found | undefined {
  if (index === segments.length) return node.end && accept(node.end) ? { end: node.end, params } : undefined;
  const raw = segments[index] as string;
  const literal = node.literals.get(decodeSegment(raw));
  if (literal) {
    const found = walk(literal, segments, index + 1, params, accept);
    if (found) return found;
  }
  for (const param of node.params) {
    if (raw === "") continue;
    const last = param.multiSegment ? segments.length : index + 1;
    for (let end = index + 1; end <= last; end++) {
      const value = segments.slice(index, end).map(decodeSegment).join("/");
      const found = walk(param.node, segments, end, { ...params, [param.name]: value }, accept);
      if (found) return found;
    }
  }
  return undefined;
}

function splitPath(path: string): string[] {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  return trimmed === "" ? [] : trimmed.split("/");
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function newNode(): TrieNode {
  return { literals: new Map(), params: [] };
}
