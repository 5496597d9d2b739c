// In-process figures of the peer for the bench (BENCH ONLY), in CPU time of this process
// (process.cpuUsage: every thread, libuv's pool included), as tests/bench/micro.py times ours.
//
//     node micro.mjs verify <jwks url> <tokens.json> <rounds>
//     node micro.mjs scrypt <samples>
//
// verify: a Node resource server verifying Better Auth's JWTs the way its documentation shows,
// `jose`'s jwtVerify against createRemoteJWKSet (the key set fetched once, then cached in the
// function). tokens.json is what the server's /bench/tokens answers: {tokens, issuer, audience},
// distinct tokens of one key. One line of JSON, µs per verification:
//   cold_us     the first jwtVerify of all (the key set fetched over loopback, the key imported)
//   repeat_us   one token verified again and again (jose keeps no verified-token cache, so each
//               is a full EdDSA verification): the best of <rounds> runs of 2,000
//   distinct_us every token verified once: the best of <rounds> runs over the whole list
//
// scrypt: Better Auth's own verifyPassword (`better-auth/crypto`, what sign-in calls), the
// median CPU ms of <samples> verifies of one hash, one at a time.

import { readFileSync } from "node:fs";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { hashPassword, verifyPassword } from "better-auth/crypto";

function cpuUs(since) {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

async function bestPerCall(work, calls, rounds) {
  let fastest = Infinity;
  for (let round = 0; round < rounds; round++) {
    const started = process.cpuUsage();
    await work();
    fastest = Math.min(fastest, cpuUs(started) / calls);
  }
  return fastest;
}

async function verify(jwksUrl, tokensPath, rounds) {
  const { tokens, issuer, audience } = JSON.parse(readFileSync(tokensPath, "utf8"));
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const options = { issuer, audience };
  const repeat = 2000;

  const coldStarted = process.cpuUsage();
  await jwtVerify(tokens[0], jwks, options);
  const coldUs = cpuUs(coldStarted);
  // A warm-up, so that the JIT has compiled the path before it is timed.
  for (const token of tokens) await jwtVerify(token, jwks, options);

  const repeatUs = await bestPerCall(
    async () => {
      for (let i = 0; i < repeat; i++) await jwtVerify(tokens[0], jwks, options);
    },
    repeat,
    rounds,
  );
  const distinctUs = await bestPerCall(
    async () => {
      for (const token of tokens) await jwtVerify(token, jwks, options);
    },
    tokens.length,
    rounds,
  );
  return { cold_us: coldUs, repeat_us: repeatUs, distinct_us: distinctUs, tokens: tokens.length };
}

async function scrypt(samples) {
  const password = "correct horse battery staple";
  const hash = await hashPassword(password);
  await verifyPassword({ hash, password });
  const times = [];
  for (let i = 0; i < samples; i++) {
    const started = process.cpuUsage();
    if (!(await verifyPassword({ hash, password }))) throw new Error("verify said no");
    times.push(cpuUs(started) / 1000);
  }
  times.sort((a, b) => a - b);
  return { verify_ms: times[Math.floor(times.length / 2)], samples };
}

const [mode, ...args] = process.argv.slice(2);
const result =
  mode === "verify"
    ? await verify(args[0], args[1], Number(args[2] ?? "5"))
    : await scrypt(Number(args[0] ?? "15"));
console.log(JSON.stringify({ ...result, node: process.version }));
