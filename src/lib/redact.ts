/** Text from outside (a backend's error page, a network error) made fit for the operator's log. */
const MAX_LOGGED = 300;

export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text.slice(0, MAX_LOGGED * 2).replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, "$1***@");
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join("***");
  return out.slice(0, MAX_LOGGED);
}
