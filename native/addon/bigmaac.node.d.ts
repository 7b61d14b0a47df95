/**
 * Type declarations of bigmaac.node, the reader of BigMaac's stats segments
 * (docs/architecture.md, section 3). Shipped beside the addon, so that a client which
 * loads it by path, `import addon = require('.../bigmaac.node')`, gets its types.
 * The types themselves are the agent's (src/agent/addon.ts), emitted into ./types.
 */
import type { BigmaacAddon } from './types/agent/addon';

declare const addon: BigmaacAddon;
export = addon;
