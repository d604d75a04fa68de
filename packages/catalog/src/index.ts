export { PV_GRUB_AKIS, AkiTable, pvGrubFromName, type PvGrubAki, type PvGrubDisk, type Arch } from './akis.js';
export { IMAGE_CLASSES, classify, pvGrubRowFrom, suggestedTargets, type Classified, type ImageClass } from './classify.js';
export { catalog, forEachImage, type AkiCount, type CatalogFilters, type CatalogOptions, type CatalogSummary } from './catalog.js';
export { IMAGE_ID, type ImageRecord, type ListingWarning, type Warn } from './image.js';
export { JsonScanner, fromJson, MAX_OBJECT } from './json.js';
export { LineSplitter, MAX_LINE } from './lines.js';
export { TextListingParser } from './text.js';
export { WorklistWriter, worklistEntry, type WorklistEntry } from './worklist.js';
export { Tally, type TallyData } from './tally.js';
