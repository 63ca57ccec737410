/**
 * The secrets a database URL carries (its password, raw and URL-encoded as it may be
 * written), for masking them in build logs and messages.
 *
 * @example
 * secretsOf("postgresql://app:p%40ss@db:5432/app") // => ["p@ss", "p%40ss"]
 */
export function secretsOf(url: string): string[] {
  const found = new Set<string>();
  const add = (raw: string | null | undefined) => {
    if (!raw) return;
    found.add(raw);
    found.add(encodeURIComponent(raw));
  };
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      found.add(parsed.password);
      add(safeDecode(parsed.password));
    }
    add(parsed.searchParams.get("password"));
  } catch {
    // Not a URL we can parse: fall back to the userinfo part, if any.
    const match = /^[a-z][a-z0-9+.-]*:\/\/[^/@:]*:([^/@]*)@/i.exec(url);
    if (match?.[1]) {
      found.add(match[1]);
      add(safeDecode(match[1]));
    }
  }
  return [...found].filter((secret) => secret.length > 0);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
