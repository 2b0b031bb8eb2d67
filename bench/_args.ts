// Command-line options, read the same way by every benchmark and helper
// process, on Node, Deno and Bun alike. The benchmarks take `--name=a,b`;
// the processes they start take `--name value`, as examples/echo.ts does.

import process from "node:process";

/** The values of `--name=a,b`, or undefined without one. */
export function listed(name: string): string[] | undefined {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))
    ?.slice(name.length + 3).split(",");
}

/** The numbers of `--name=1,2`, or `fallback` without one. */
export function numbers(name: string, fallback: number[]): number[] {
  return listed(name)?.map(Number) ?? fallback;
}

/** The number of `--name=1`, or `fallback` without one. */
export function number(name: string, fallback: number): number {
  return numbers(name, [fallback])[0];
}

/** The value of `--name value`, or `fallback`: a number if it is one. */
export function option(name: string, fallback: number): number;
export function option(name: string, fallback: string): string;
export function option(
  name: string,
  fallback: number | string,
): number | string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at > 0 && at + 1 < process.argv.length
    ? process.argv[at + 1]
    : undefined;
  if (value === undefined) return fallback;
  return typeof fallback === "number" ? Number(value) : value;
}
