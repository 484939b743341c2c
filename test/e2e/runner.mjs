// A small sequential scenario runner: each scenario runs once, in order; a scenario that needs
// another one that failed fails too ("blocked by …"), it is never skipped. On failure it saves a
// screenshot and the logs. The last line printed is `N passed, N failed`.
export class Runner {
  constructor({ onFailure } = {}) {
    this.list = [];
    this.results = new Map();
    this.onFailure = onFailure;
  }

  scenario(name, { needs = [], timeout = 180_000 } = {}, fn) {
    this.list.push({ name, needs, timeout, fn });
  }

  async run(ctxFor) {
    for (const s of this.list) {
      const t0 = Date.now();
      const blockers = s.needs.filter((n) => this.results.get(n)?.ok !== true);
      let ok = false, error = null;
      if (blockers.length) {
        error = new Error(`blocked by failed scenario(s): ${blockers.join(', ')}`);
      } else {
        let timer;
        try {
          const ctx = await ctxFor(s);
          await Promise.race([
            s.fn(ctx),
            new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${s.timeout / 1000} s`)), s.timeout); }),
          ]);
          ok = true;
        } catch (e) {
          error = e;
        } finally {
          clearTimeout(timer);
        }
        if (!ok && this.onFailure) { try { await this.onFailure(s, error); } catch (e) { process.stderr.write(`[e2e] saving failure artifacts: ${e.message}\n`); } }
      }
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      this.results.set(s.name, { ok, error, secs });
      if (ok) console.log(`  ✔ ${s.name} (${secs} s)`);
      else console.log(`  ✖ ${s.name} (${secs} s)\n      ${String(error?.message ?? error).split('\n').join('\n      ')}`);
    }
    const passed = [...this.results.values()].filter((r) => r.ok).length;
    const failed = this.results.size - passed;
    return { passed, failed };
  }
}

export function assert(cond, msg) { if (!cond) throw new Error(msg); }
