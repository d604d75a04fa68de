/**
 * Errors of the catalog that are the user's input, not a bug: the CLI prints the message and
 * exits 1 (E_NO_INPUT, E_NOT_A_LISTING) or 2 (E_BAD_FILTER, a usage mistake).
 */
export type CatalogErrorCode = 'E_BAD_FILTER' | 'E_NO_INPUT' | 'E_NOT_A_LISTING';

export class CatalogError extends Error {
  readonly code: CatalogErrorCode;

  constructor(code: CatalogErrorCode, message: string) {
    super(message);
    this.name = 'CatalogError';
    this.code = code;
  }
}
