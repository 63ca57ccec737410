import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

/** A JSON Schema object as written in GitHub's OpenAPI 3.0 description (with `nullable`, `$ref`, `x-*`). */
export type OpenApiSchema = { [keyword: string]: unknown };

/** `{ $ref: "#/components/..." }` */
export interface OpenApiReference {
  $ref: string;
}

/** One parameter of an operation (path, query or header). */
export interface OpenApiParameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: OpenApiSchema;
  "x-multi-segment"?: boolean;
}

/** One operation (method + path) of the description. */
export interface OpenApiOperation {
  operationId: string;
  summary?: string;
  parameters?: Array<OpenApiParameter | OpenApiReference>;
  requestBody?: {
    required?: boolean;
    content: Record<string, { schema?: OpenApiSchema }>;
  };
  responses?: Record<string, { content?: Record<string, { schema?: OpenApiSchema }> } | OpenApiReference>;
  "x-github"?: { enabledForGitHubApps?: boolean; category?: string; subcategory?: string };
}

/** The parts of GitHub's OpenAPI description the stand-in uses. */
export interface GitHubOpenApiSpec {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  "x-webhooks"?: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, OpenApiSchema>;
    parameters: Record<string, OpenApiParameter>;
    responses: Record<string, { content?: Record<string, { schema?: OpenApiSchema }> }>;
  };
}

/** The loaded description and how long loading it took. */
export interface LoadedGitHubOpenApiSpec {
  spec: GitHubOpenApiSpec;
  /** Where the description was read from. */
  file: string;
  /** Milliseconds the first load in this process spent reading and parsing the file. */
  loadMs: number;
}

let cached: Promise<LoadedGitHubOpenApiSpec> | undefined;

/**
 * Loads `@octokit/openapi`'s `generated/api.github.com.json` once per process.
 *
 * The non-dereferenced variant is used: it is 13 MB instead of 73 MB, parses in about
 * 0.2 s, and its `$ref`s let the validator compile each component schema once.
 *
 * @example
 * const { spec, loadMs } = await loadGitHubOpenApiSpec();
 */
export function loadGitHubOpenApiSpec(): Promise<LoadedGitHubOpenApiSpec> {
  cached ??= (async () => {
    const file = createRequire(import.meta.url).resolve("@octokit/openapi/generated/api.github.com.json");
    const started = performance.now();
    const spec = JSON.parse(await readFile(file, "utf8")) as GitHubOpenApiSpec;
    return { spec, file, loadMs: Math.round(performance.now() - started) };
  })();
  return cached;
}
