// The system the platform replaces, as a peer of `make bench` (BENCH ONLY, never deployed):
// Better Auth with email and password and its JWT plugin, on PostgreSQL through its built-in
// Kysely adapter and the pure-JS `pg` driver, served by Node's `http` through `toNodeHandler`.
// Written the way Better Auth's documentation shows, at its defaults, with two changes for the
// benchmark: the rate limiter is off (64 connections signing in as one user would be refused),
// and telemetry is off (no traffic leaves the machine).
//
//     PEER_DATABASE_URL=postgresql://… PEER_PORT=… node server.mjs
//
// On start it creates its tables with Better Auth's own migration function (`getMigrations`),
// then the one table of the app (task). Routes:
//   /api/auth/*             Better Auth's handler (sign-up/email, sign-in/email, token, jwks, …)
//   GET  /api/shipped/task  the caller's newest task: auth.api.getSession with the JWT plugin
//                           as shipped (its after-hook signs a JWT into `set-auth-jwt` on every
//                           getSession), then one row from PostgreSQL
//   GET  /api/lean/task     the same with `disableSettingJwtHeader: true` (no JWT signed)
//   POST /api/lean/task     creates a task (JSON: title, description) for the seeding
//   GET  /bench/tokens?count=N  N distinct JWTs (a jti each) signed by the plugin's key for the
//                           caller, the payload getJwtToken would sign: for the verification
//                           micro-benchmark (verify.mjs)
//   GET  /bench/sessions    {count}: the session rows, one per sign-in (the bench's count of
//                           the sign-ins the server completed)
//   GET  /health/live

import http from "node:http";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler, fromNodeHeaders } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const port = Number(process.env.PEER_PORT);
const baseURL = `http://127.0.0.1:${port}`;
const pool = new pg.Pool({ connectionString: process.env.PEER_DATABASE_URL });

function options(jwtOptions) {
  return {
    baseURL,
    // A fixed secret: the bench's database is fresh every run and dropped after it.
    secret: "bench-only-secret-0123456789abcdef0123456789abcdef",
    database: pool,
    emailAndPassword: { enabled: true },
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    plugins: [jwt(jwtOptions)],
  };
}

// Two instances on the same pool, tables and secret: a session made by one is valid in both.
const shipped = betterAuth(options(undefined));
const lean = betterAuth(options({ disableSettingJwtHeader: true }));

const { runMigrations } = await getMigrations(shipped.options);
await runMigrations();
await pool.query(`
  CREATE TABLE IF NOT EXISTS task (
    id uuid PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    title varchar(200) NOT NULL,
    description varchar(2000) NOT NULL DEFAULT '',
    completed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX IF NOT EXISTS task_user_created ON task (user_id, created_at DESC);
`);

const authHandler = toNodeHandler(shipped);

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch (error) {
        reject(error);
      }
    });
    req.on("error", reject);
  });
}

const NEWEST_TASK = `
  SELECT id, title, description, completed, created_at, updated_at FROM task
  WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1`;

async function task(auth, req, res) {
  // As an app calls it: the request's headers (its session cookie) to auth.api.getSession.
  // The JWT the plugin's hook signs is passed on, so that the bench can see it was signed.
  const { headers, response: session } = await auth.api.getSession({
    headers: fromNodeHeaders(req.headers),
    returnHeaders: true,
  });
  if (!session) return send(res, 401, { detail: "unauthorized" });
  if (req.method === "GET") {
    const { rows } = await pool.query(NEWEST_TASK, [session.user.id]);
    if (rows.length === 0) return send(res, 404, { detail: "no task" });
    const signed = headers.get("set-auth-jwt");
    return send(res, 200, rows[0], signed ? { "set-auth-jwt": signed } : {});
  }
  const body = await readJson(req);
  await pool.query(
    "INSERT INTO task (id, user_id, title, description) VALUES ($1, $2, $3, $4)",
    [randomUUID(), session.user.id, String(body.title), String(body.description ?? "")],
  );
  return send(res, 201, { created: true });
}

async function tokens(req, res, url) {
  const session = await lean.api.getSession({ headers: fromNodeHeaders(req.headers) });
  if (!session) return send(res, 401, { detail: "unauthorized" });
  const count = Math.min(Number(url.searchParams.get("count") ?? "1"), 10000);
  const issued = [];
  for (let i = 0; i < count; i++) {
    const payload = {
      iat: Math.floor(Date.now() / 1000),
      ...session.user,
      sub: session.user.id,
      jti: randomUUID(),
    };
    const { token } = await lean.api.signJWT({ body: { payload } });
    issued.push(token);
  }
  return send(res, 200, { tokens: issued, issuer: baseURL, audience: baseURL });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, baseURL);
  try {
    if (url.pathname.startsWith("/api/auth/")) return await authHandler(req, res);
    if (url.pathname === "/api/shipped/task" && req.method === "GET") {
      return await task(shipped, req, res);
    }
    if (url.pathname === "/api/lean/task") return await task(lean, req, res);
    if (url.pathname === "/bench/tokens") return await tokens(req, res, url);
    if (url.pathname === "/bench/sessions") {
      const { rows } = await pool.query('SELECT count(*)::int AS count FROM "session"');
      return send(res, 200, rows[0]);
    }
    if (url.pathname === "/health/live") return send(res, 200, { status: "ok" });
    return send(res, 404, { detail: "not found" });
  } catch (error) {
    console.error(error);
    if (!res.headersSent) send(res, 500, { detail: "internal error" });
  }
});

server.listen(port, "127.0.0.1");

function shutdown() {
  server.close();
  server.closeAllConnections();
  pool.end().finally(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
