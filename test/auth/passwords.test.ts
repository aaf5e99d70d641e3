import t from 'tap'
import { DEFAULT_SCRYPT, hashPassword, needsRehash, parseHash, verifyPassword } from '../../src/auth/passwords.ts'

t.test('a hash describes its params and salt, and verifies only its password', async (t) => {
  const hash = await hashPassword('correct horse battery')
  t.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.notMatch(hash, /correct horse/)
  t.same(parseHash(hash)?.params, DEFAULT_SCRYPT)
  t.equal(await verifyPassword('correct horse battery', hash), true)
  t.equal(await verifyPassword('correct horse batterY', hash), false)
  t.equal(await verifyPassword('', hash), false)
})

t.test('the same password hashes differently each time (random salt)', async (t) => {
  const [a, b] = await Promise.all([hashPassword('same password'), hashPassword('same password')])
  t.not(a, b)
  t.equal(await verifyPassword('same password', a), true)
  t.equal(await verifyPassword('same password', b), true)
})

t.test('the params stored in the hash are the ones used to verify', async (t) => {
  const weak = await hashPassword('pw-12345678', { ln: 10, r: 8, p: 1 })
  t.match(weak, /^\$scrypt\$ln=10,r=8,p=1\$/)
  t.equal(await verifyPassword('pw-12345678', weak), true)
  t.equal(needsRehash(weak), true, 'weaker than the default')
  t.equal(needsRehash(await hashPassword('pw-12345678')), false)
})

t.test('a tampered or foreign hash never verifies', async (t) => {
  const hash = await hashPassword('pw-12345678')
  const parts = hash.split('$')
  const key = Buffer.from(parts[4]!, 'base64url')
  key[0]! ^= 1
  const flipped = [...parts.slice(0, 4), key.toString('base64url')].join('$')
  t.equal(await verifyPassword('pw-12345678', flipped), false, 'flipped key bit')
  t.equal(await verifyPassword('pw-12345678', hash.replace('ln=15', 'ln=14')), false, 'changed cost')
  t.equal(await verifyPassword('pw-12345678', hash.replace('ln=15', 'ln=40')), false, 'absurd cost refused, not run')
  t.equal(await verifyPassword('pw-12345678', 'pw-12345678'), false, 'plaintext stored by mistake')
  t.equal(await verifyPassword('x', ''), false)
  t.equal(parseHash('$2b$10$abcdefghijklmnopqrstuv'), undefined, 'bcrypt is not ours')
})

t.test('passwords are compared after NFKC normalisation', async (t) => {
  const hash = await hashPassword('caf\u00e9-password')
  t.equal(await verifyPassword('cafe\u0301-password', hash), true, 'composed and decomposed é are the same password')
})

t.test('hashing runs off the event loop', async (t) => {
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  await Promise.all([hashPassword('a-password-1'), hashPassword('a-password-2')])
  clearInterval(timer)
  t.ok(ticks > 0, 'timers fired while hashing')
})

t.test('new passwords: common, repetitive, sequential and username-like ones are refused, naming the rule', async (t) => {
  const { newPasswordProblem, checkNewPassword } = await import('../../src/auth/passwords.ts')
  const refused: Array<[string, string, RegExp]> = [
    ['password', 'ada', /most common/],
    ['Password1!', 'ada', /most common/],
    ['iloveyou123', 'ada', /most common/],
    ['!!dragon2024', 'ada', /most common/],
    ['aaaaaaaa', 'ada', /too few characters/],
    ['abababababab', 'ada', /too few characters/],
    ['abcdefghij', 'ada', /sequence/],
    ['98765432', 'ada', /most common|sequence/],
    ['ada_lovelace', 'ada_lovelace', /is the username/],
    ['ecalevol_ada', 'ada_lovelace', /is the username/],
    ['ADA_LOVELACE', 'ada_lovelace', /is the username/],
    ['my-ada_lovelace-pw', 'ada_lovelace', /contains the username/],
    ['zorbquint', 'zorbquint_88', /contains the username/], // the username holds the password
    ['my synchub password', 'ada', /service/],
  ]
  for (const [password, username, rule] of refused) t.match(await newPasswordProblem(password, { username }), rule, `${password} (user ${username})`)
  const accepted: Array<[string, string]> = [
    ['correct horse battery', 'user1_abcde'],
    ['correct horse', 'ada'],
    ['tidal-orbit-marmalade', 'root'],
    ['Zq8#mW2!pL', 'ada'],
    ['ada lovelace wrote the first program', 'ada'], // a 3-letter name is only refused when it is the whole password
    ['mot de passé sûr vraiment', 'ada'],
  ]
  for (const [password, username] of accepted) t.equal(await newPasswordProblem(password, { username }), undefined, `${password} (user ${username}) passes`)
  await t.rejects(checkNewPassword('password', { username: 'ada' }), { code: 'weak_password', message: /^password: it is one of the most common passwords/ })
})
