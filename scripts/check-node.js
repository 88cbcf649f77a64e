#!/usr/bin/env node
// npm preinstall: one clear line about Node.js versions instead of a screen of EBADENGINE
// warnings (.npmrc sets loglevel=error for that). mailroute runs on the Node.js 24 that this
// install fetches (the `node` npm package, node_modules/node), so any Node.js that can run npm
// is fine for installing. Plain JavaScript: it runs on the machine's Node.
// npm puts node_modules/.bin (the fetched Node.js 24) first on PATH for scripts, so the Node.js
// that matters here, the one running npm, is the one its user agent names
const version = /\bnode\/v(\d+\.\d+\.\d+)/.exec(process.env.npm_config_user_agent ?? "")?.[1] ?? process.versions.node;
const [major, minor] = version.split(".").map(Number);
const runsItself = major > 22 || (major === 22 && minor >= 19);
if (!runsItself) {
  console.error(`mailroute: this machine has Node.js v${version}; mailroute will run on the Node.js 24 this install fetches (node_modules/node). Dependency engine warnings are hidden (.npmrc loglevel=error; npm install --loglevel=warn shows them).`);
}
