import { badInput, PAGE_SIZE_LIMIT } from '../schema';

/** PAGE_SIZE_DEFAULT and PAGE_SIZE_MAX (docs/operations.md). */
export interface PageSettings {
  defaultSize: number;
  maxSize: number;
}

export const DEFAULT_PAGES: PageSettings = { defaultSize: 100, maxSize: 1000 };

/** `first` as a worker gets it: the default when unset; BAD_USER_INPUT past the maximum. */
export function pageSize(first: number | null | undefined, pages: PageSettings): number {
  const error = pageSizeError(first, pages);
  if (error) throw badInput(error);
  return first ?? pages.defaultSize;
}

/** Why `first` is out of bounds, or null. */
export function pageSizeError(first: unknown, pages: PageSettings): string | null {
  const max = Math.min(pages.maxSize, PAGE_SIZE_LIMIT);
  if (first == null || (typeof first === 'number' && Number.isInteger(first) && first >= 1 && first <= max)) return null;
  return `first must be 1-${max} (PAGE_SIZE_MAX), not ${JSON.stringify(first)}`;
}
