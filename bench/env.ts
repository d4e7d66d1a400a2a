/**
 * The benchmark's settings from the environment.
 */

/** A positive integer from `process.env[name]`, or `fallback`; anything else stops the run. */
export const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}
