import { ImageError, type ErrorPlace } from './errors.js';

const MIB = 1024 * 1024;

/**
 * The memory the tables read from one image (a block map, a BAT and what is kept per
 * entry) may take: 256 MiB, or AMITRANS_TABLE_BUDGET_MIB. A header that claims more is
 * refused before anything is allocated, whatever the file's size: a crafted header must
 * not make amitrans take gigabytes.
 */
export function tableBudget(): number {
  const mib = Number(process.env.AMITRANS_TABLE_BUDGET_MIB);
  return Number.isFinite(mib) && mib > 0 ? mib * MIB : 256 * MIB;
}

/** Refuse `bytes` of tables (for `what`, as the header at `place` claims) beyond the budget. */
export function checkTableBudget(bytes: number, what: string, place: ErrorPlace): void {
  const budget = tableBudget();
  if (bytes > budget) {
    throw new ImageError('E_TOO_LARGE',
      `${what} would take ${bytes} bytes of memory, over the ${budget / MIB} MiB table budget (AMITRANS_TABLE_BUDGET_MIB)`, place);
  }
}
