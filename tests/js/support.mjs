// Shared by the supabase-js checks: client options for Node 20 (the `ws` package as realtime transport, no
// persisted session) and a polling wait.
import WebSocket from 'ws'

export const options = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket } }
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitFor (pred, what, ms = 8000) {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}
