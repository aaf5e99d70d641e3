import t from 'tap'
import { eachHub } from '../helpers/hub.ts'

t.test('registration refuses weak passwords with weak_password and a message naming the rule', async (t) => {
  eachHub(t, async (t, h) => {
    const register = async (username: string, password: string) => {
      const res = await fetch(`${h.url}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
      return { status: res.status, body: await res.json() }
    }
    t.match(await register('ada_1', 'password'), { status: 400, body: { error: { code: 'weak_password', message: /password: it is one of the most common/ } } }, '"password"')
    t.match(await register('ada_2', 'aaaaaaaa'), { status: 400, body: { error: { code: 'weak_password', message: /too few characters/ } } }, '"aaaaaaaa"')
    t.match(await register('ada_lovelace', 'ada_lovelace'), { status: 400, body: { error: { code: 'weak_password', message: /is the username/ } } }, 'the username itself')
    t.match(await register('ada_4', 'short'), { status: 400, body: { error: { code: 'invalid', message: /password/ } } }, 'too short stays invalid (the schema)')
    const login = await fetch(`${h.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ada_1', password: 'password' }) })
    t.equal(login.status, 401, 'no refused registration created a user')
    t.match(await register('ada_5', 'correct horse battery staple'), { status: 201 }, 'a passphrase passes')
  })
})
