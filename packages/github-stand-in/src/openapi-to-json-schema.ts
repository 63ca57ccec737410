import type { OpenApiSchema } from "./openapi-spec.js";

/** Base of the `$id` under which each `#/components/schemas/<name>` is registered with ajv. */
export const COMPONENT_SCHEMA_ID_PREFIX = "https://github-stand-in.invalid/components/schemas/";

/** A JSON Schema (draft-07) ready for ajv. */
export type JsonSchema = { [keyword: string]: unknown };

/** Formats ajv checks; GitHub's others (`int64`, `uri-template`, `repo.nwo`, …) are annotations only. */
const CHECKED_FORMATS = new Set(["date-time", "date", "email", "uri"]);

/** Keywords whose value is one schema. */
const SCHEMA_KEYWORDS = new Set(["items", "additionalProperties", "not"]);
/** Keywords whose value is a list of schemas. */
const SCHEMA_LIST_KEYWORDS = new Set(["allOf", "anyOf", "oneOf"]);
/** Keywords whose value maps names to schemas. */
const SCHEMA_MAP_KEYWORDS = new Set(["properties", "patternProperties"]);
/** OpenAPI-only or documentation keywords that ajv does not need. */
const DROPPED_KEYWORDS = new Set(["nullable", "example", "examples", "discriminator", "description", "deprecated", "readOnly", "writeOnly", "xml", "externalDocs"]);

/**
 * Converts an OpenAPI 3.0 schema to JSON Schema draft-07:
 * - `nullable: true` becomes `type: [t, "null"]` (and adds `null` to an `enum`), or an
 *   `anyOf` with `{ type: "null" }` when the schema has no `type` (135 such schemas in GitHub's description);
 * - `oneOf` becomes `anyOf`: GitHub's alternatives often overlap (an object matching two
 *   open object schemas), and GitHub itself accepts any matching alternative;
 * - `$ref: "#/components/schemas/x"` points at {@link COMPONENT_SCHEMA_ID_PREFIX}`x`;
 * - documentation keywords, `x-*` extensions and unchecked formats are dropped.
 *
 * The walk follows schema positions only, so a property named `example` or `nullable` survives.
 */
export function openApiSchemaToJsonSchema(schema: unknown): JsonSchema | boolean {
  if (typeof schema === "boolean") return schema;
  if (!isObject(schema)) return {};
  if (typeof schema.$ref === "string") return { $ref: convertRef(schema.$ref) };

  const out: JsonSchema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(keyword) || keyword.startsWith("x-")) continue;
    if (keyword === "format") {
      if (typeof value === "string" && CHECKED_FORMATS.has(value)) out.format = value;
    } else if (SCHEMA_KEYWORDS.has(keyword)) {
      out[keyword] = Array.isArray(value) ? value.map(openApiSchemaToJsonSchema) : openApiSchemaToJsonSchema(value);
    } else if (SCHEMA_LIST_KEYWORDS.has(keyword) && Array.isArray(value)) {
      out[keyword === "oneOf" ? "anyOf" : keyword] = value.map(openApiSchemaToJsonSchema);
    } else if (SCHEMA_MAP_KEYWORDS.has(keyword) && isObject(value)) {
      out[keyword] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, openApiSchemaToJsonSchema(sub)]));
    } else {
      out[keyword] = value;
    }
  }
  // `oneOf` next to an `anyOf` would overwrite it; keep both as an allOf of the two.
  if (Array.isArray(schema.oneOf) && Array.isArray(schema.anyOf)) {
    delete out.anyOf;
    out.allOf = [
      ...(Array.isArray(out.allOf) ? out.allOf : []),
      { anyOf: schema.anyOf.map(openApiSchemaToJsonSchema) },
      { anyOf: schema.oneOf.map(openApiSchemaToJsonSchema) },
    ];
  }

  if (schema.nullable !== true) return out;
  if (typeof out.type === "string") {
    out.type = [out.type, "null"];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [out, { type: "null" }] };
}

/** Names of the `#/components/schemas/*` a converted schema refers to directly. */
export function referencedComponentNames(schema: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(schema)) {
    for (const item of schema) referencedComponentNames(item, found);
  } else if (isObject(schema)) {
    for (const [key, value] of Object.entries(schema)) {
      if (key === "$ref" && typeof value === "string" && value.startsWith(COMPONENT_SCHEMA_ID_PREFIX)) {
        found.add(decodeURIComponent(value.slice(COMPONENT_SCHEMA_ID_PREFIX.length)));
      } else if (key !== "enum" && key !== "default" && key !== "const") {
        referencedComponentNames(value, found);
      }
    }
  }
  return found;
}

function convertRef(ref: string): string {
  const prefix = "#/components/schemas/";
  if (!ref.startsWith(prefix)) throw new Error(`Unsupported $ref in a schema position: ${ref}`);
  return COMPONENT_SCHEMA_ID_PREFIX + encodeURIComponent(ref.slice(prefix.length));
}

function isObject(value: unknown): value is OpenApiSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
