/** One named stage of a command and its wall time, as the fleet's image records list theirs. */
export interface StageTime {
  name: string;
  seconds: number;
}

/** Run `fn` as stage `name`: its time is recorded in `stages` whether it succeeds or throws. */
export async function timeStage<T>(stages: StageTime[], name: string, fn: () => Promise<T>): Promise<T> {
  const record: StageTime = { name, seconds: 0 };
  stages.push(record);
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    record.seconds = Math.round(performance.now() - t0) / 1000;
  }
}
