/**
 * One notebook's BigMaac toggle: its metadata, its registry entry on the
 * server and its kernel's actual state, shared by the toolbar button, the
 * command and the Property Inspector.
 */

import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { fetchKernelStates, IKernelBigmaacState } from '../panel';
import { setNotebookChoice, setNotebookEnabled } from './serverApi';
import {
  IToggleState,
  METADATA_KEY,
  metadataChoice,
  toggleState,
  withEnabled
} from './toggle';

/** Kernel statuses after which the kernel may have been (re)started. */
const STARTING: ReadonlySet<Kernel.Status> = new Set<Kernel.Status>([
  'starting',
  'restarting',
  'autorestarting',
  'unknown'
]);

export class NotebookToggleModel implements IDisposable {
  constructor(options: NotebookToggleModel.IOptions) {
    this.panel = options.panel;
    this._serverSettings = options.serverSettings;
    this._userDefault = options.userDefault;
    const context = this.panel.sessionContext;
    this.panel.model?.metadataChanged.connect(this._emit, this);
    context.kernelChanged.connect(this._onKernelChanged, this);
    context.statusChanged.connect(this._onStatusChanged, this);
    this.panel.disposed.connect(() => this.dispose());
    void this.refreshKernelState();
  }

  readonly panel: NotebookPanel;

  /** Emitted when the state shown changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get state(): IToggleState {
    const choice = metadataChoice(this.panel.model?.getMetadata(METADATA_KEY));
    return toggleState(choice, this._kernelState, this._userDefault());
  }

  /** Whether the notebook has a kernel (to restart). */
  get hasKernel(): boolean {
    return !!this.panel.sessionContext.session?.kernel;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Record the notebook's choice: in its metadata (saved with it) and in the
   * server's registry, so a restart before the next save uses it too.
   *
   * Rejects if the registry refused it; the metadata is set either way.
   */
  async setEnabled(enabled: boolean): Promise<void> {
    const model = this.panel.model;
    if (!model) {
      return;
    }
    model.setMetadata(
      METADATA_KEY,
      withEnabled(model.getMetadata(METADATA_KEY), enabled)
    );
    this._emit();
    await setNotebookEnabled(
      this.panel.context.localPath,
      enabled,
      this._serverSettings
    );
  }

  /**
   * Record a fuller choice (the panel's OOM fix): `enabled` and, when given,
   * the threshold, in the metadata and in the server's registry, keeping
   * the other keys of both.
   */
  async setChoice(choice: {
    enabled: boolean;
    min_bigmaac_size?: string;
  }): Promise<void> {
    const model = this.panel.model;
    if (!model) {
      return;
    }
    const section = withEnabled(model.getMetadata(METADATA_KEY), choice.enabled);
    if (choice.min_bigmaac_size !== undefined) {
      section.min_bigmaac_size = choice.min_bigmaac_size;
    }
    model.setMetadata(METADATA_KEY, section);
    this._emit();
    await setNotebookChoice(
      this.panel.context.localPath,
      choice,
      this._serverSettings
    );
  }

  /** Restart the notebook's kernel through its session, as its toolbar would. */
  async restartKernel(): Promise<void> {
    await this.panel.sessionContext.restartKernel();
  }

  /** Ask the server what the running kernel was started with. */
  async refreshKernelState(): Promise<void> {
    const kernelId = this.panel.sessionContext.session?.kernel?.id;
    if (!kernelId) {
      this._setKernelState(null);
      return;
    }
    try {
      const states = await fetchKernelStates(this._serverSettings);
      const found = states.find(s => s.id === kernelId);
      // The kernel may have changed while we asked.
      if (this.panel.sessionContext.session?.kernel?.id === kernelId) {
        this._setKernelState(found?.bigmaac ?? null);
      }
    } catch (reason) {
      console.warn('BigMaac: could not read the kernels’ state.', reason);
    }
  }

  /** Notify the views, e.g. after the user's default changed. */
  update(): void {
    this._emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private _onKernelChanged(): void {
    this._setKernelState(null);
    void this.refreshKernelState();
  }

  private _onStatusChanged(_: unknown, status: Kernel.Status): void {
    if (status === 'idle' && STARTING.has(this._lastStatus)) {
      void this.refreshKernelState();
    }
    this._lastStatus = status;
  }

  private _setKernelState(state: IKernelBigmaacState | null): void {
    this._kernelState = state;
    this._emit();
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _serverSettings: ServerConnection.ISettings;
  private _userDefault: () => boolean;
  private _kernelState: IKernelBigmaacState | null = null;
  private _lastStatus: Kernel.Status = 'unknown';
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace NotebookToggleModel {
  export interface IOptions {
    panel: NotebookPanel;
    serverSettings: ServerConnection.ISettings;
    /** The user's setting for new kernels, read when needed. */
    userDefault: () => boolean;
  }
}
