// Worker threads do not inherit tsx's loader from `node --import tsx`: register it here, as bin/synchub.js does.
import { register } from 'tsx/esm/api'

register()
await import('./load-worker.ts')
