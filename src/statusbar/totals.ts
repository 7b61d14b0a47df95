/**
 * The status bar's totals over every running kernel.
 */

/** What the totals need of a panel row. */
export interface ITotalsRow {
  readonly diskBacked: { bytes: number };
  readonly residency: { resident: number } | null;
}

export interface ITotals {
  kernels: number;
  diskBacked: number;
  /** `null` while a kernel with disk-backed memory has no residency measured. */
  resident: number | null;
}

/** Sum disk-backed and resident bytes over `rows`. */
export function totals(rows: readonly ITotalsRow[]): ITotals {
  let diskBacked = 0;
  let resident: number | null = 0;
  for (const row of rows) {
    diskBacked += row.diskBacked.bytes;
    if (row.residency) {
      resident = resident === null ? null : resident + row.residency.resident;
    } else if (row.diskBacked.bytes > 0) {
      resident = null;
    }
  }
  return { kernels: rows.length, diskBacked, resident };
}
