// A small, complete city service: community garden plots. It is the example of packages/apps/README.md
// ("Writing a service") and is tested in test/example.test.ts.
import { type Value, defineService, ensure, equalBytes, s } from '@cityledger/core'

/** Error codes of gardens (besides the runtime's BAD_ARGS and UNAUTHORIZED). */
export type GardensErrorCode = 'NO_SUCH_PLOT' | 'TAKEN' | 'NOT_HOLDER' | 'BAD_UNTIL' | 'BAD_GENESIS'

/** One assigned plot. Holders are pseudonymous keys: no names, no addresses. */
export interface PlotRecord {
  [k: string]: Value
  holder: Uint8Array
  /** The plot is free again from this height on. */
  until: number
}

/** The longest assignment, in blocks: it bounds the expiry queue and keeps `endBlock` work small. */
export const MAX_TERM = 100_000

const plotKey = (plot: number) => `plot/${plot}`
/** Expiry queue: the plots whose term ends at a height (a few per height, so endBlock stays bounded). */
const dueKey = (height: number) => `due/${height}`

/**
 * `gardens`: a district's community garden plots. A steward (identity role ('gardens','steward'))
 * assigns a free plot to a citizen's key until a height; the holder may give it back early; at its
 * `until` height the end-of-block hook frees it. State (namespace `gardens/`):
 *   config       -> { plots }                 from genesis
 *   plot/<n>     -> PlotRecord                one per assigned plot
 *   due/<height> -> plot numbers whose term ends at that height
 */
export const gardens = defineService({
  name: 'gardens',
  version: '1.0.0',
  // Declared so the runtime lets us call identity's exports (and refuses cycles or unknown names).
  dependencies: ['identity'],

  // Runs once in the genesis block with `genesis.services.gardens` of the network's genesis file.
  genesis(ctx, config) {
    const plots = (config as { plots?: Value } | undefined)?.plots ?? 10
    ensure(
      typeof plots === 'number' && Number.isSafeInteger(plots) && plots >= 1 && plots <= 10_000,
      'BAD_GENESIS',
      'gardens genesis: plots must be 1..10000',
    )
    ctx.state.set('config', { plots })
  },

  methods: {
    assign: {
      doc: "Assign a free plot to a key until a height. Role ('gardens','steward').",
      // The schema parses and checks the args before auth and handler; bad args fail with BAD_ARGS.
      args: s.object({ plot: s.uint({ min: 1 }), to: s.key(), until: s.uint() }),
      // Runs with a read-only view of the state; returning false fails the tx with UNAUTHORIZED.
      auth: (ctx) =>
        ctx.call<boolean>('identity', 'hasRole', { scope: 'gardens', role: 'steward', key: ctx.signer }) ===
        true,
      handler(ctx, { plot, to, until }) {
        const { plots } = ctx.state.get<{ plots: number }>('config')!
        ensure(plot <= plots, 'NO_SUCH_PLOT', `plots are numbered 1..${plots}`)
        ensure(!ctx.state.has(plotKey(plot)), 'TAKEN', `plot ${plot} is assigned`)
        ensure(
          until > ctx.height && until - ctx.height <= MAX_TERM,
          'BAD_UNTIL',
          `until must be in ${ctx.height + 1}..${ctx.height + MAX_TERM}`,
        )
        ctx.state.set(plotKey(plot), { holder: to, until })
        // A read is our own copy; the new list is stored by set.
        ctx.state.set(dueKey(until), [...(ctx.state.get<number[]>(dueKey(until)) ?? []), plot])
        ctx.emit('assigned', { plot, until })
      },
    },
    release: {
      doc: 'Give a plot back before its term ends. Its holder.',
      args: s.object({ plot: s.uint({ min: 1 }) }),
      handler(ctx, { plot }) {
        const rec = ctx.state.get<PlotRecord>(plotKey(plot))
        ensure(rec, 'NO_SUCH_PLOT', `plot ${plot} is not assigned`)
        ensure(equalBytes(rec.holder, ctx.signer), 'NOT_HOLDER', 'only the holder releases a plot')
        ctx.state.delete(plotKey(plot))
        // The queue entry stays; endBlock skips plots whose record is gone or was re-assigned.
        ctx.emit('released', { plot })
      },
    },
  },

  queries: {
    plot: {
      doc: 'A plot: { holder, until } or null when free.',
      args: s.object({ plot: s.uint({ min: 1 }) }),
      handler: (q, { plot }) => q.state.get(plotKey(plot)) ?? null,
    },
  },

  // After the block's last tx: free the plots whose term ends now. Bounded work: one queue entry.
  endBlock(ctx) {
    const due = ctx.state.get<number[]>(dueKey(ctx.height))
    if (!due) return
    for (const plot of due) {
      const rec = ctx.state.get<PlotRecord>(plotKey(plot))
      if (rec && rec.until === ctx.height) {
        ctx.state.delete(plotKey(plot))
        ctx.emit('expired', { plot })
      }
    }
    ctx.state.delete(dueKey(ctx.height))
  },
})
