import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import * as ajvFormats from "ajv-formats";
import type { GitHubOpenApiSpec, OpenApiOperation, OpenApiParameter, OpenApiSchema } from "./openapi-spec.js";
import { COMPONENT_SCHEMA_ID_PREFIX, openApiSchemaToJsonSchema, referencedComponentNames, type JsonSchema } from "./openapi-to-json-schema.js";
import { createOperationMatcher, type MatchedOperation, type OperationMatcher } from "./operation-matcher.js";
import { findUndocumentedProperties } from "./undocumented-properties.js";

/** ajv-formats is CommonJS: its function is the module itself, which NodeNext types as a namespace. */
const addFormats = ((ajvFormats as unknown as { default: unknown }).default ?? ajvFormats) as (ajv: Ajv, formats: string[]) => Ajv;

/** One thing wrong with a request (or response, or webhook payload), precise enough to fix. */
export interface ValidationError {
  /** Which part of the message is wrong. */
  location: "route" | "path" | "query" | "body" | "response" | "payload";
  /** JSON pointer inside that part, e.g. `/output/summary`; `""` for the whole part. */
  pointer: string;
  /** ajv keyword (`type`, `enum`, `required`, `maxLength`, …) or `undocumentedProperty`, `unknownQueryParameter`, `unknownOperation`, `body`. */
  keyword: string;
  /** What is wrong, e.g. `must be one of: queued, in_progress, completed (got "done")`. */
  message: string;
}

/** The outcome of checking one request against the description. */
export interface RequestValidation {
  /** The operation the request matched; absent when the method and path are not in the description. */
  match?: MatchedOperation;
  errors: ValidationError[];
  /** True when the JSON body breaks its schema; GitHub answers such requests 422 "Invalid request". */
  bodyInvalid: boolean;
}

/** Counters for the report and benchmarks. */
export interface ValidatorStats {
  /** Operations whose validators were compiled so far. */
  compiledOperations: number;
  /** Component schemas registered with ajv so far. */
  registeredComponents: number;
  /** Milliseconds spent compiling validators. */
  compileMs: number;
  /** Milliseconds spent validating (without compiling). */
  validateMs: number;
  /** Requests validated. */
  requests: number;
}

/** Validates requests, responses and webhook payloads against GitHub's OpenAPI description. */
export interface OpenApiValidator {
  readonly matcher: OperationMatcher;
  readonly stats: ValidatorStats;
  /** Checks route, path parameters, query parameters and the JSON body of one request. */
  validateRequest(request: { method: string; path: string; query: URLSearchParams; body: unknown; hasBody: boolean; contentType?: string }): RequestValidation;
  /** Checks a JSON response body against the operation's schema for that status. */
  validateResponse(options: { match: MatchedOperation; status: number; body: unknown }): ValidationError[];
  /** Checks a webhook payload against `x-webhooks` (e.g. event `pull_request`, action `opened`). */
  validateWebhookPayload(options: { event: string; payload: unknown }): ValidationError[];
}

interface CompiledOperation {
  pathParams: ValidateFunction;
  pathTypes: Map<string, OpenApiSchema>;
  query: ValidateFunction;
  queryParams: Map<string, OpenApiParameter>;
  body?: { validate: ValidateFunction; schema: JsonSchema | boolean; required: boolean };
}

/**
 * Creates a validator over GitHub's OpenAPI description. Nothing is compiled up front:
 * each operation's validators are compiled on its first request and cached, and each
 * `#/components/schemas/*` is converted and registered with ajv once, when first needed.
 *
 * @example
 * const validator = createOpenApiValidator({ spec });
 * const { match, errors } = validator.validateRequest({ method: "POST", path: "/repos/a/b/check-runs", query, body, hasBody: true });
 */
export function createOpenApiValidator(options: { spec: GitHubOpenApiSpec; checkUndocumentedBodyProperties?: boolean }): OpenApiValidator {
  const { spec } = options;
  const checkUndocumented = options.checkUndocumentedBodyProperties ?? true;
  const matcher = createOperationMatcher({ spec });
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true, validateSchema: false, addUsedSchema: false });
  addFormats(ajv, ["date-time", "date", "email", "uri"]);

  const registered = new Map<string, JsonSchema | boolean>();
  const operations = new Map<string, CompiledOperation>();
  const responseValidators = new Map<string, ValidateFunction | null>();
  const webhookValidators = new Map<string, ValidateFunction | null>();
  const stats: ValidatorStats = { compiledOperations: 0, registeredComponents: 0, compileMs: 0, validateMs: 0, requests: 0 };

  function register(schema: unknown): void {
    const pending = [...referencedComponentNames(schema)];
    while (pending.length > 0) {
      const name = pending.pop() as string;
      if (registered.has(name)) continue;
      const source = spec.components.schemas[name];
      if (source === undefined) throw new Error(`GitHub's description has no #/components/schemas/${name}`);
      const converted = openApiSchemaToJsonSchema(source);
      registered.set(name, converted);
      ajv.addSchema(typeof converted === "boolean" ? converted : { ...converted, $id: COMPONENT_SCHEMA_ID_PREFIX + encodeURIComponent(name) });
      pending.push(...referencedComponentNames(converted));
    }
    stats.registeredComponents = registered.size;
  }

  function compile(schema: JsonSchema | boolean): ValidateFunction {
    register(schema);
    return ajv.compile(schema);
  }

  function resolveParameter(parameter: OpenApiParameter | { $ref: string }): OpenApiParameter | undefined {
    if ("$ref" in parameter) return spec.components.parameters[parameter.$ref.split("/").pop() ?? ""];
    return parameter;
  }

  function compiledFor(match: MatchedOperation): CompiledOperation {
    const key = `${match.method} ${match.template}`;
    const existing = operations.get(key);
    if (existing) return existing;
    const started = performance.now();
    const parameters = (match.operation.parameters ?? []).map(resolveParameter).filter((p): p is OpenApiParameter => p !== undefined);
    const pathParameters = parameters.filter((p) => p.in === "path");
    const queryParameters = parameters.filter((p) => p.in === "query");
    const pathSchema = objectSchema(pathParameters);
    const querySchema = objectSchema(queryParameters);
    const jsonBody = match.operation.requestBody?.content["application/json"];
    const compiled: CompiledOperation = {
      pathParams: compile(pathSchema),
      pathTypes: new Map(pathParameters.map((p) => [p.name, p.schema ?? {}])),
      query: compile(querySchema),
      queryParams: new Map(queryParameters.map((p) => [p.name, p])),
    };
    if (jsonBody?.schema !== undefined) {
      const schema = openApiSchemaToJsonSchema(jsonBody.schema);
      compiled.body = { validate: compile(schema), schema, required: match.operation.requestBody?.required === true };
    }
    operations.set(key, compiled);
    stats.compiledOperations = operations.size;
    stats.compileMs += performance.now() - started;
    return compiled;
  }

  function validateRequest(request: Parameters<OpenApiValidator["validateRequest"]>[0]): RequestValidation {
    stats.requests++;
    const found = matcher.match(request.method, request.path);
    if (!found.found) {
      const message = found.pathExists
        ? `${request.method.toUpperCase()} is not an operation of this path in GitHub's description (it has ${found.allowedMethods.join(", ")})`
        : `no path of GitHub's description matches ${request.path}`;
      return { errors: [{ location: "route", pointer: "", keyword: "unknownOperation", message }], bodyInvalid: false };
    }
    const { match } = found;
    const compiled = compiledFor(match);
    const started = performance.now();
    const errors: ValidationError[] = [];

    const pathValues: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(match.pathParams)) pathValues[name] = coerce(value, compiled.pathTypes.get(name));
    if (!compiled.pathParams(pathValues)) errors.push(...formatErrors("path", compiled.pathParams.errors));

    const queryValues: Record<string, unknown> = {};
    for (const name of new Set(request.query.keys())) {
      const parameter = compiled.queryParams.get(name);
      if (!parameter) {
        errors.push({ location: "query", pointer: `/${name}`, keyword: "unknownQueryParameter", message: `is not a query parameter of ${match.operation.operationId} (GitHub ignores it)` });
        continue;
      }
      const all = request.query.getAll(name);
      queryValues[name] = all.length > 1 ? all.map((v) => coerce(v, parameter.schema)) : coerce(all[0] ?? "", parameter.schema);
    }
    if (!compiled.query(queryValues)) errors.push(...formatErrors("query", compiled.query.errors));

    let bodyInvalid = false;
    const isJson = request.contentType === undefined || /\bjson\b/i.test(request.contentType);
    if (compiled.body) {
      if (!request.hasBody) {
        if (compiled.body.required) {
          bodyInvalid = true;
          errors.push({ location: "body", pointer: "", keyword: "required", message: `${match.operation.operationId} requires a JSON request body` });
        }
      } else if (!isJson) {
        errors.push({ location: "body", pointer: "", keyword: "body", message: `content-type ${request.contentType} is not application/json` });
      } else if (!compiled.body.validate(request.body)) {
        bodyInvalid = true;
        errors.push(...formatErrors("body", compiled.body.validate.errors));
      } else if (checkUndocumented) {
        for (const extra of findUndocumentedProperties({ schema: compiled.body.schema, data: request.body, resolve: resolveRef })) {
          errors.push({
            location: "body",
            pointer: extra.pointer,
            keyword: "undocumentedProperty",
            message: `is not a documented property (GitHub silently ignores it; documented here: ${extra.documented.join(", ") || "none"})`,
          });
        }
      }
    } else if (request.hasBody && match.method !== "GET" && match.method !== "DELETE") {
      errors.push({ location: "body", pointer: "", keyword: "body", message: `${match.operation.operationId} takes no request body` });
    }
    stats.validateMs += performance.now() - started;
    return { match, errors, bodyInvalid };
  }

  function resolveRef(ref: string): JsonSchema | boolean | undefined {
    if (!ref.startsWith(COMPONENT_SCHEMA_ID_PREFIX)) return undefined;
    return registered.get(decodeURIComponent(ref.slice(COMPONENT_SCHEMA_ID_PREFIX.length)));
  }

  function validateResponse({ match, status, body }: { match: MatchedOperation; status: number; body: unknown }): ValidationError[] {
    const key = `${match.method} ${match.template} ${status}`;
    let validate = responseValidators.get(key);
    if (validate === undefined) {
      const response = match.operation.responses?.[String(status)] ?? match.operation.responses?.default;
      const resolved = response && "$ref" in response ? spec.components.responses[response.$ref.split("/").pop() ?? ""] : response;
      const schema = resolved?.content?.["application/json"]?.schema;
      validate = schema === undefined ? null : compile(openApiSchemaToJsonSchema(schema));
      responseValidators.set(key, validate);
    }
    if (validate === null) {
      const declared = Object.keys(match.operation.responses ?? {});
      return declared.includes(String(status)) ? [] : [{ location: "response", pointer: "", keyword: "status", message: `status ${status} is not a documented response of ${match.operation.operationId} (${declared.join(", ")})` }];
    }
    if (validate(body)) return [];
    // GitHub answers "" for unset URLs (a deployment status's target_url, log_url, environment_url) that the description types `format: uri`.
    return formatErrors("response", validate.errors?.filter((e) => !(e.keyword === "format" && e.data === "")));
  }

  function validateWebhookPayload({ event, payload }: { event: string; payload: unknown }): ValidationError[] {
    const action = typeof payload === "object" && payload !== null && "action" in payload ? String((payload as { action: unknown }).action) : undefined;
    const names = [action === undefined ? undefined : `${event}-${action}`, event].filter((n): n is string => n !== undefined).map((n) => n.replace(/_/g, "-"));
    const name = names.find((n) => spec["x-webhooks"]?.[n] !== undefined);
    if (name === undefined) return [{ location: "payload", pointer: "", keyword: "unknownWebhook", message: `GitHub's description has no webhook ${names.join(" or ")}` }];
    let validate = webhookValidators.get(name);
    if (validate === undefined) {
      const operation = Object.values(spec["x-webhooks"]?.[name] ?? {})[0] as OpenApiOperation | undefined;
      const schema = operation?.requestBody?.content["application/json"]?.schema;
      validate = schema === undefined ? null : compile(openApiSchemaToJsonSchema(schema));
      webhookValidators.set(name, validate);
    }
    if (validate === null || validate(payload)) return [];
    return formatErrors("payload", validate.errors);
  }

  return { matcher, stats, validateRequest, validateResponse, validateWebhookPayload };
}

function objectSchema(parameters: OpenApiParameter[]): JsonSchema {
  return {
    type: "object",
    properties: Object.fromEntries(parameters.map((p) => [p.name, openApiSchemaToJsonSchema(p.schema ?? {})])),
    required: parameters.filter((p) => p.required === true || p.in === "path").map((p) => p.name),
  };
}

/** Turns a query or path string into the type its schema asks for, so ajv can check it. */
function coerce(value: string, schema: OpenApiSchema | undefined): unknown {
  const type = schema?.type;
  if ((type === "integer" || type === "number") && value.trim() !== "" && !Number.isNaN(Number(value))) return Number(value);
  if (type === "boolean" && (value === "true" || value === "false")) return value === "true";
  if (type === "array") return value.split(",");
  return value;
}

/**
 * Turns ajv's errors into precise messages: the pointer names the offending field (the
 * missing one for `required`), enums list their allowed values, and the noise of
 * `anyOf` branches that only exist for `nullable` is dropped.
 */
export function formatErrors(location: ValidationError["location"], errors: ErrorObject[] | null | undefined): ValidationError[] {
  const list = errors ?? [];
  const out: ValidationError[] = [];
  for (const error of list) {
    const params = error.params as Record<string, unknown>;
    // The `{ type: "null" }` branch of a nullable value says "must be null": never the useful part.
    if (error.keyword === "type" && params.type === "null" && error.schemaPath.includes("anyOf")) continue;
    let pointer = error.instancePath;
    let message = error.message ?? error.keyword;
    switch (error.keyword) {
      case "required":
        pointer = `${pointer}/${String(params.missingProperty)}`;
        message = "is required but missing";
        break;
      case "additionalProperties":
        pointer = `${pointer}/${String(params.additionalProperty)}`;
        message = "is not allowed here (additionalProperties: false)";
        break;
      case "enum":
        message = `must be one of: ${(params.allowedValues as unknown[]).map((v) => (v === null ? "null" : String(v))).join(", ")} (got ${preview(error.data)})`;
        break;
      case "type":
        message = `must be ${String(params.type)} (got ${describeType(error.data)} ${preview(error.data)})`;
        break;
      case "anyOf": {
        const deeper = list.some((other) => other !== error && other.instancePath.startsWith(error.instancePath) && other.schemaPath.startsWith(error.schemaPath.slice(0, -"anyOf".length)) && !(other.keyword === "type" && (other.params as Record<string, unknown>).type === "null"));
        if (deeper) continue;
        message = `must match one of the alternatives the schema allows (got ${preview(error.data)})`;
        break;
      }
      case "maxLength":
      case "minLength":
        message = `${message} (got ${typeof error.data === "string" ? error.data.length : "?"})`;
        break;
      case "maxItems":
      case "minItems":
        message = `${message} (got ${Array.isArray(error.data) ? error.data.length : "?"})`;
        break;
      case "format":
      case "pattern":
        message = `${message} (got ${preview(error.data)})`;
        break;
    }
    // Alternatives (`anyOf`) of different types at one place read better as one message.
    const previous = out.at(-1);
    if (error.keyword === "type" && previous?.keyword === "type" && previous.pointer === pointer) {
      previous.message = previous.message.replace(/^must be (.+?) \(got/, `must be $1 or ${String(params.type)} (got`);
      continue;
    }
    out.push({ location, pointer, keyword: error.keyword, message });
  }
  return out;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
