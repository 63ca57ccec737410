/**
 * A strict parser of Prometheus' text exposition format (version 0.0.4), for the tests of
 * `GET /metrics`: what Prometheus would refuse to scrape throws here. (The npm parser
 * `parse-prometheus-text-format` drops the series of labelled histograms, so it cannot
 * check ours.)
 *
 * Checked: metric and label names, label value escapes, numbers, HELP and TYPE at most
 * once per family and TYPE before its samples, each family's samples together, no sample
 * twice, and for histograms: `le` on every bucket, cumulative buckets ending in `+Inf`
 * equal to `_count`, and a `_sum` and `_count` for every series.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
  samples: Sample[];
}

export interface ParsedMetrics {
  families: Map<string, MetricFamily>;
  samples: Sample[];
  /** The value of the sample with exactly these labels; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** As Go's strconv.ParseFloat reads it (Prometheus' scraper): `NaN` and `Inf` in any case (prom-client writes `Nan`). */
const NUMBER = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export function parsePrometheusText(text: string): ParsedMetrics {
  const families = new Map<string, MetricFamily>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: string | undefined;
  const lines = text.split("\n");
  if (lines.at(-1) !== "") throw new Error("the exposition must end with a line feed");
  lines.pop();

  const familyOf = (name: string, lineNumber: number): MetricFamily => {
    if (current !== name) {
      if (current) closed.add(current);
      if (closed.has(name)) throw new Error(`line ${lineNumber}: samples of ${name} are not together`);
      current = name;
    }
    let family = families.get(name);
    if (!family) families.set(name, (family = { name, type: "untyped", samples: [] }));
    return family;
  };

  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!meta) return; // an ordinary comment
      const [, keyword, name, rest = ""] = meta;
      if (!METRIC_NAME.test(name!)) throw new Error(`line ${lineNumber}: bad metric name ${name}`);
      const family = familyOf(name!, lineNumber);
      if (keyword === "HELP") {
        if (family.help !== undefined) throw new Error(`line ${lineNumber}: second HELP for ${name}`);
        family.help = rest;
      } else {
        if (!TYPES.has(rest.trim())) throw new Error(`line ${lineNumber}: unknown TYPE ${rest}`);
        if (family.samples.length > 0 || family.type !== "untyped") throw new Error(`line ${lineNumber}: TYPE of ${name} after its samples or twice`);
        family.type = rest.trim() as MetricFamily["type"];
      }
      return;
    }
    const sample = parseSample(line, lineNumber);
    const base = familyNameOf(sample.name, families);
    const family = familyOf(base, lineNumber);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`line ${lineNumber}: ${sample.name} with the same labels twice`);
    seen.add(key);
    family.samples.push(sample);
    samples.push(sample);
  });
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);

  return {
    families,
    samples,
    value(name, labels = {}) {
      const wanted = JSON.stringify(Object.entries(labels).sort());
      return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted)?.value;
    },
  };
}

/** `x_bucket`, `x_sum` and `x_count` belong to the histogram or summary `x`. */
function familyNameOf(name: string, families: Map<string, MetricFamily>): string {
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const family = base === undefined ? undefined : families.get(base);
  return family && (family.type === "histogram" || family.type === "summary") ? base! : name;
}

function parseSample(line: string, lineNumber: number): Sample {
  const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!head) throw new Error(`line ${lineNumber}: not a sample: ${line}`);
  const name = head[1]!;
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at += 1;
    for (;;) {
      if (line[at] === "}") break;
      const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at))?.[0];
      if (!labelName || !LABEL_NAME.test(labelName) || line[at + labelName.length] !== "=" || line[at + labelName.length + 1] !== '"') {
        throw new Error(`line ${lineNumber}: bad label at column ${at + 1}: ${line}`);
      }
      at += labelName.length + 2;
      let value = "";
      for (;;) {
        const char = line[at];
        if (char === undefined) throw new Error(`line ${lineNumber}: unterminated label value`);
        at += 1;
        if (char === '"') break;
        if (char === "\\") {
          const escaped = line[at];
          at += 1;
          if (escaped === "\\" || escaped === '"') value += escaped;
          else if (escaped === "n") value += "\n";
          else throw new Error(`line ${lineNumber}: bad escape \\${escaped}`);
        } else value += char;
      }
      if (labelName in labels) throw new Error(`line ${lineNumber}: label ${labelName} twice`);
      labels[labelName] = value;
      if (line[at] === ",") at += 1;
      else if (line[at] !== "}") throw new Error(`line ${lineNumber}: expected , or } at column ${at + 1}`);
    }
    at += 1;
  }
  const rest = line.slice(at);
  const fields = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
  if (!fields || !NUMBER.test(fields[1]!)) throw new Error(`line ${lineNumber}: bad value in ${line}`);
  const raw = fields[1]!;
  const special = raw.toLowerCase().replace(/^\+/, "");
  const value = special === "nan" ? NaN : /^-?inf/.test(special) ? (special.startsWith("-") ? -Infinity : Infinity) : Number(raw);
  return { name, labels, value };
}

function checkHistogram(family: MetricFamily) {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let entry = series.get(key);
    if (!entry) series.set(key, (entry = { buckets: [] }));
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push([le === "+Inf" ? Infinity : Number(le), sample.value]);
    } else if (sample.name === `${family.name}_sum`) entry.sum = sample.value;
    else if (sample.name === `${family.name}_count`) entry.count = sample.value;
    else throw new Error(`${family.name}: unexpected sample ${sample.name}`);
  }
  for (const [key, entry] of series) {
    const sorted = [...entry.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    sorted.forEach(([, count], i) => {
      if (i > 0 && count < sorted[i - 1]![1]) throw new Error(`${family.name}${key}: buckets are not cumulative`);
    });
    if (entry.sum === undefined || entry.count === undefined) throw new Error(`${family.name}${key}: no _sum or _count`);
    if (entry.count !== sorted.at(-1)![1]) throw new Error(`${family.name}${key}: _count differs from the +Inf bucket`);
  }
}
