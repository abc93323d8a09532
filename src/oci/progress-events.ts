/** What a pull or load reports about one blob, for progress display. */
export interface BlobProgress {
  /** Digest of the blob. */
  digest: string;
  /** What the blob is: `layer 2/5`, `config`. */
  label: string;
  status: 'waiting' | 'downloading' | 'exists' | 'done';
  done: number;
  total: number;
}

/** Receives progress updates; called often while bytes flow. */
export type ProgressListener = (p: BlobProgress) => void;
