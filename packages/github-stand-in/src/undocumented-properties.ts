import type { JsonSchema } from "./openapi-to-json-schema.js";

/** A property of a request body that the operation's schema does not describe. */
export interface UndocumentedProperty {
  /** JSON pointer of the property, e.g. `/output/sumary`. */
  pointer: string;
  /** The names the schema does document at that level. */
  documented: string[];
}

/**
 * Finds properties a request body carries that its schema never mentions, at any depth.
 *
 * GitHub ignores such properties silently, so a misspelt `auto_merge` or `sumary` goes
 * unnoticed until the behaviour is wrong; the schemas rarely say `additionalProperties:
 * false`. A level counts as open (anything allowed) when any alternative has
 * `additionalProperties`, `patternProperties`, or describes no properties at all.
 * Names listed in `required` count as documented.
 *
 * @example
 * findUndocumentedProperties({ schema, data: body, resolve: (ref) => components.get(ref) });
 */
export function findUndocumentedProperties(options: {
  schema: JsonSchema | boolean;
  data: unknown;
  /** Returns the converted schema a `$ref` points at. */
  resolve: (ref: string) => JsonSchema | boolean | undefined;
}): UndocumentedProperty[] {
  const found: UndocumentedProperty[] = [];
  visit([options.schema], options.data, "", options.resolve, found);
  return found;
}

function visit(schemas: Array<JsonSchema | boolean>, data: unknown, pointer: string, resolve: (ref: string) => JsonSchema | boolean | undefined, found: UndocumentedProperty[]): void {
  const alternatives = flatten(schemas, resolve);
  if (alternatives.length === 0) return;
  if (Array.isArray(data)) {
    const itemSchemas = alternatives.flatMap((s) => (s.items === undefined || Array.isArray(s.items) ? [] : [s.items as JsonSchema | boolean]));
    if (itemSchemas.length === 0) return;
    data.forEach((item, index) => visit(itemSchemas, item, `${pointer}/${index}`, resolve, found));
    return;
  }
  if (typeof data !== "object" || data === null) return;
  const objectSchemas = alternatives.filter((s) => s.properties !== undefined || s.additionalProperties !== undefined || s.patternProperties !== undefined || s.type === "object" || (Array.isArray(s.type) && s.type.includes("object")));
  if (objectSchemas.length === 0) return;
  const open = objectSchemas.some((s) => s.properties === undefined || (s.additionalProperties !== undefined && s.additionalProperties !== false) || s.patternProperties !== undefined);
  const documented = new Map<string, Array<JsonSchema | boolean>>();
  for (const schema of objectSchemas) {
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!documented.has(name)) documented.set(name, []);
    }
    for (const [name, sub] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema | boolean>)) {
      documented.set(name, [...(documented.get(name) ?? []), sub]);
    }
  }
  for (const [name, value] of Object.entries(data)) {
    const childPointer = `${pointer}/${escapePointer(name)}`;
    const subSchemas = documented.get(name);
    if (subSchemas === undefined) {
      if (!open) found.push({ pointer: childPointer, documented: [...documented.keys()] });
    } else {
      visit(subSchemas, value, childPointer, resolve, found);
    }
  }
}

/** Resolves `$ref`s and spreads `allOf`/`anyOf` into one list of alternatives. */
function flatten(schemas: Array<JsonSchema | boolean>, resolve: (ref: string) => JsonSchema | boolean | undefined, depth = 0): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const schema of schemas) {
    if (typeof schema === "boolean" || depth > 32) continue;
    if (typeof schema.$ref === "string") {
      const target = resolve(schema.$ref);
      if (target !== undefined) out.push(...flatten([target], resolve, depth + 1));
      continue;
    }
    out.push(schema);
    for (const keyword of ["allOf", "anyOf"] as const) {
      const list = schema[keyword];
      if (Array.isArray(list)) out.push(...flatten(list as Array<JsonSchema | boolean>, resolve, depth + 1));
    }
  }
  return out;
}

function escapePointer(name: string): string {
  return name.replace(/~/g, "~0").replace(/\//g, "~1");
}
