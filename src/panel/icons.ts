/**
 * The BigMaac icon: a stack of layers (RAM on top of disk), drawn with
 * JupyterLab's `jp-icon3` class so it follows the theme.
 */

import { LabIcon } from '@jupyterlab/ui-components';

const BIGMAAC_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 10c0-3.9 3.6-7 8-7s8 3.1 8 7z"/>
    <rect x="3" y="11.5" width="18" height="2.5" rx="1.25"/>
    <path d="M4 15.5h16V17c0 2.2-1.8 4-4 4H8c-2.2 0-4-1.8-4-4z"/>
  </g>
</svg>`;

export const bigmaacIcon = new LabIcon({
  name: 'jupyterlab-bigmaac:bigmaac',
  svgstr: BIGMAAC_SVG
});
