/** The package version, inlined by the bundler. */
import { version } from '../../package.json';

export const VERSION: string = version;
export const SERVER_NAME = 'bigmaac-agent';
