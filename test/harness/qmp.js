// @ts-check
/**
 * A minimal client for QEMU's machine protocol (QMP) on a unix socket: the harness
 * uses it only when L1 stalls, to read every vCPU's registers and to press sysrq keys
 * on L1's keyboard. Every call is bounded: a QEMU whose main loop is itself stuck
 * does not answer, and that is reported, not waited for.
 */
import { createConnection } from 'node:net';

/** How long one QMP command may take before the harness gives up on it. */
const COMMAND_TIMEOUT_MS = 10_000;

/** A connected QMP session (capabilities negotiated). */
export class QmpClient {
  /** @param {import('node:net').Socket} socket */
  constructor(socket) {
    this.socket = socket;
    this.buffered = '';
    /** @type {((reply: Record<string, any>) => void)[]} */
    this.waiting = [];
    socket.setEncoding('utf8');
    socket.on('data', (/** @type {string} */ text) => {
      this.buffered += text;
      let newline;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, newline).trim();
        this.buffered = this.buffered.slice(newline + 1);
        if (!line) continue;
        /** @type {Record<string, any>} */
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          continue;
        }
        // Asynchronous events (STOP, RESUME, ...) are not replies.
        if ('event' in message) continue;
        this.waiting.shift()?.(message);
      }
    });
  }

  /**
   * Connects to QEMU's QMP socket and negotiates capabilities.
   * @param {string} path
   * @returns {Promise<QmpClient>}
   */
  static async connect(path) {
    const socket = await new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => {}); // a failed call reports itself through its timeout
    const client = new QmpClient(socket);
    await client.reply(); // the greeting
    await client.execute('qmp_capabilities');
    return client;
  }

  /** The next reply, bounded by COMMAND_TIMEOUT_MS. @returns {Promise<Record<string, any>>} */
  reply() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from QEMU's monitor in ${COMMAND_TIMEOUT_MS / 1000} s`)), COMMAND_TIMEOUT_MS);
      this.waiting.push((message) => {
        clearTimeout(timer);
        resolve(message);
      });
    });
  }

  /**
   * Runs a QMP command and returns its `return` value.
   * @param {string} command
   * @param {Record<string, unknown>} [args]
   */
  async execute(command, args) {
    const answer = this.reply();
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    const message = await answer;
    if (message.error) throw new Error(`QMP ${command}: ${message.error.desc ?? JSON.stringify(message.error)}`);
    return message.return;
  }

  /**
   * Runs a human-monitor (HMP) command, e.g. `info registers -a`, and returns its text.
   * @param {string} commandLine
   * @returns {Promise<string>}
   */
  async hmp(commandLine) {
    return String(await this.execute('human-monitor-command', { 'command-line': commandLine }));
  }

  close() {
    this.socket.destroy();
  }
}
