#!/usr/bin/env node
// The `synchub` command: runs the compiled hub and CLI in dist/ (`npm run build` writes it;
// `npm install` in a checkout runs the build through the `prepare` script).
let main
try {
  ;({ main } = await import('../dist/src/main.js'))
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/main.js')) {
    console.error('synchub: dist/ is missing: run `npm run build` first')
    process.exit(1)
  }
  throw err
}
// Exit explicitly once the command is done: after a drain, idle keep-alive HTTP connections
// (which uWebSockets.js v20 cannot close) would otherwise keep the process alive.
process.exit(await main(process.argv.slice(2)))
