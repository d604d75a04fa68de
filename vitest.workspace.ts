// The one list of test projects. vitest.config.ts reads it; a package that is not listed
// here runs no tests (test/workspace.test.ts in @amitrans/testkit checks the list against
// the packages/ folder).
export const projects = [
  'testkit',
  'block',
  'mbr',
  'catalog',
  'extfs',
  'vhd',
  'vdi',
  'vmdk',
  'qcow2',
  'grub',
  'ova',
  'guest',
  'verify',
  'remote',
  'bundle',
  'diskimg',
  'fleet',
  'cli',
] as const;

export default projects.map((name) => ({
  extends: true as const,
  test: { name, root: `packages/${name}`, include: ['test/**/*.test.ts'] },
}));
