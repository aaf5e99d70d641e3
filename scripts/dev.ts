/**
 * `npm run dev -- <command>`: the `synchub` command from the TypeScript sources through tsx, for
 * development (bin/synchub.js runs the compiled dist/ that `npm run build` writes).
 */
import { main } from '../src/main.ts'

process.exit(await main(process.argv.slice(2)))
