/** The client commands' part of `synchub help`. */
export const CLIENT_USAGE = `client commands (a device of a user, on a running hub; the credentials come from
SYNCHUB_USERNAME and SYNCHUB_PASSWORD, never from flags):
  tail --url URL --device ID --state DIR [--collections a,b]
                        stay connected (socket, REST when it cannot) and print each
                        applied change as one JSON line; Ctrl-C saves the cursor and
                        exits 0; rerun on the same --state to go on after the last line
  push --url URL --device ID --state DIR --conversation CID --count N [--rate R] [--prefix P]
                        create conversation CID if missing, then put N messages with ids
                        P-1 … P-N (P defaults to the device id) at R per second; exits 0
                        once every one is acked; rerun after a kill to finish the rest
  help                  this list
  --url is the hub's base URL (http://host:8080 or https://…); the socket is /v1/ws under it.`
