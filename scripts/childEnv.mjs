// The environment for tools that set-up starts (npm install, pip, code-server's install scripts).
// A script started by `npm run …` or `npm test` inherits the outer npm's `npm_config_*`,
// `npm_lifecycle_*`, `npm_package_*` and `npm_execpath` values; an inner `npm install` reads them
// as its own configuration, and code-server's postinstall reads the Node version from
// `npm_config_user_agent` — so under `npm test` it saw the outer Node 20 and refused, although
// Node 24 was first on PATH. Children get the user's environment without the outer npm's.
const OUTER_NPM = /^(npm_|INIT_CWD$|NODE$|COLOR$)/i;

/** process.env without what the outer npm put there, plus `extra`. */
export function childEnv(extra = {}, base = process.env) {
  const env = {};
  for (const [k, v] of Object.entries(base)) if (!OUTER_NPM.test(k) && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}
