/**
 * The views of a notebook's BigMaac toggle: a toolbar button and a section
 * of the Property Inspector. Both are buttons with `aria-pressed`, so screen
 * readers announce them as toggles and Enter or Space switches them.
 */

import { DOMUtils } from '@jupyterlab/apputils';
import { NotebookPanel, NotebookTools } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { bigmaacIcon } from '../panel';
import { NotebookToggleModel } from './model';
import { toggleLabel, toggleTooltip } from './toggle';

/** Switch the toggle of a notebook (and offer to restart its kernel). */
export type ToggleAction = (model: NotebookToggleModel) => void;

/** Draw the toggle's state on a button. */
function render(
  button: HTMLButtonElement,
  label: HTMLElement,
  model: NotebookToggleModel,
  trans: TranslationBundle
): void {
  const state = model.state;
  const tooltip = toggleTooltip(state, model.hasKernel, trans);
  label.textContent = toggleLabel(state, trans);
  button.title = tooltip;
  button.setAttribute('aria-pressed', String(state.on));
  button.setAttribute(
    'aria-label',
    state.on
      ? trans.__('BigMaac is on for this notebook. Switch it off.')
      : trans.__('BigMaac is off for this notebook. Switch it on.')
  );
  button.classList.toggle('jp-mod-bigmaacOn', state.on);
  button.classList.toggle('jp-mod-restartNeeded', state.restartNeeded);
}

function createButton(extraClass: string): {
  button: HTMLButtonElement;
  label: HTMLElement;
} {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `jp-BigmaacToggle-button ${extraClass}`;
  const icon = bigmaacIcon.element({
    tag: 'span',
    className: 'jp-BigmaacToggle-icon'
  });
  const label = document.createElement('span');
  label.className = 'jp-BigmaacToggle-label';
  button.append(icon, label);
  return { button, label };
}

/**
 * The notebook toolbar's toggle: "BigMaac: on" / "BigMaac: off", with the
 * kernel's actual state in its tooltip.
 */
export class ToggleButton extends Widget {
  constructor(
    private readonly _model: NotebookToggleModel,
    private readonly _onToggle: ToggleAction,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-BigmaacToggle');
    const { button, label } = createButton(
      'jp-ToolbarButtonComponent jp-mod-minimal jp-Button'
    );
    this._button = button;
    this._label = label;
    button.addEventListener('click', () => this._onToggle(this._model));
    this.node.appendChild(button);
    this._model.changed.connect(this._update, this);
    this._update();
  }

  dispose(): void {
    this._model.changed.disconnect(this._update, this);
    super.dispose();
  }

  private _update(): void {
    render(this._button, this._label, this._model, this._trans);
  }

  private _button: HTMLButtonElement;
  private _label: HTMLElement;
}

/**
 * The Property Inspector's BigMaac section, for the active notebook.
 */
export class BigmaacNotebookTool extends NotebookTools.Tool {
  constructor(
    private readonly _modelFor: (panel: NotebookPanel) => NotebookToggleModel,
    private readonly _onToggle: ToggleAction,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-BigmaacNotebookTool');
    const { button, label } = createButton('jp-mod-styled jp-Button');
    this._button = button;
    this._label = label;
    this._detail = document.createElement('p');
    this._detail.className = 'jp-BigmaacNotebookTool-detail';
    // The tooltip's text, visible here, read out after the button's label.
    this._detail.id = DOMUtils.createDomID();
    this._detail.setAttribute('aria-live', 'polite');
    button.setAttribute('aria-describedby', this._detail.id);
    button.addEventListener('click', () => {
      if (this._model) {
        this._onToggle(this._model);
      }
    });
    this.node.append(button, this._detail);
    this._update();
  }

  protected onActiveNotebookPanelChanged(): void {
    this._model?.changed.disconnect(this._update, this);
    const panel = this.notebookTools.activeNotebookPanel;
    this._model = panel ? this._modelFor(panel) : null;
    this._model?.changed.connect(this._update, this);
    this._update();
  }

  private _update(): void {
    const model = this._model;
    this._button.disabled = !model;
    if (!model) {
      this._label.textContent = this._trans.__('No notebook');
      this._detail.textContent = '';
      return;
    }
    render(this._button, this._label, model, this._trans);
    this._detail.textContent = toggleTooltip(
      model.state,
      model.hasKernel,
      this._trans
    );
  }

  private _button: HTMLButtonElement;
  private _label: HTMLElement;
  private _detail: HTMLElement;
  private _model: NotebookToggleModel | null = null;
}
