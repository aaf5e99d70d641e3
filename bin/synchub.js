#!/usr/bin/env node
// The `synchub` command. The hub is TypeScript run through tsx, so there is no build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/main.ts')
// Exit explicitly once the command is done: after a drain, idle keep-alive HTTP connections
// (which uWebSockets.js v20 cannot close) would otherwise keep the process alive.
process.exit(await main(process.argv.slice(2)))
