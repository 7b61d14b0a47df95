/**
 * The BigMaac panel's public pieces, for the plugin and for later front ends.
 */

export * from './agentClient';
export * from './format';
export * from './icons';
export * from './model';
export * from './panel';
export * from './serverApi';
export * from './views';
export * from './services';
export * from './variables';
export * from './chart';
export * from './chartView';
export * from './agentEvents';
