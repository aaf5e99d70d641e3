import { byteaArray, int8Array, textArray } from '../../src/store/pg-arrays.ts'
import { eachStore } from '../contracts/adapters.ts'

/**
 * The group commit's array literals, parsed by the server itself: whatever text, integer or
 * bytes go in come back out of the declared array type unchanged, nulls included.
 */

const awkwardTexts = ['plain', '', 'NULL', 'null', 'a,b', '{x}', ' spaced ', 'quote"d', 'back\\slash', '\\"', '"', '\\', 'ünïcødé 💬', 'line\nbreak', 'tab\there']

eachStore(async (t, db) => {
  t.test('text[]', async (t) => {
    const values = [...awkwardTexts, null]
    const { rows } = await db.query<{ a: Array<string | null> }>('SELECT $1::text[] AS a', [textArray(values)])
    t.strictSame(rows[0]!.a, values)
    const empty = await db.query<{ n: number }>('SELECT cardinality($1::text[])::int8 AS n', [textArray([])])
    t.equal(empty.rows[0]!.n, 0, 'an empty list is an empty array')
  })

  t.test('text[] of text[] literals (the scope column)', async (t) => {
    const scopes = [['chat', 'a"b'], null, []]
    const { rows } = await db.query<{ a: string | null }>(
      'SELECT k::text[]::text AS a FROM unnest($1::text[]) WITH ORDINALITY AS x(k, n) ORDER BY n',
      [textArray(scopes.map((s) => s && textArray(s)))],
    )
    t.strictSame(rows.map((r) => r.a), ['{chat,"a\\"b"}', null, '{}'])
  })

  t.test('int8[]', async (t) => {
    const values = [0, 1, -1, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, null]
    const { rows } = await db.query<{ a: string }>('SELECT $1::int8[]::text AS a', [int8Array(values)])
    t.equal(rows[0]!.a, `{0,1,-1,2147483648,${Number.MAX_SAFE_INTEGER},${Number.MIN_SAFE_INTEGER},NULL}`)
    t.throws(() => int8Array([1.5]), TypeError, 'a fraction is refused, not rounded')
    t.throws(() => int8Array([2 ** 60]), TypeError, 'an unsafe integer is refused')
  })

  t.test('bytea[]', async (t) => {
    const values = [new Uint8Array([0, 1, 0x22, 0x5c, 0xff]), new Uint8Array(0), null, Buffer.from('msgpack')]
    const { rows } = await db.query<{ a: Array<string | null> }>(
      `SELECT array_agg(CASE WHEN b IS NULL THEN NULL ELSE encode(b, 'hex') END ORDER BY n) AS a FROM unnest($1::bytea[]) WITH ORDINALITY AS x(b, n)`,
      [byteaArray(values)],
    )
    t.strictSame(rows[0]!.a, ['0001225cff', '', null, Buffer.from('msgpack').toString('hex')])
  })
})
