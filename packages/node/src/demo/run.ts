/** The city scenario against a running devnet (filled in by the services work). */
export async function runDemo(devnet: string): Promise<void> {
  throw new Error(`demo not available yet (devnet ${devnet})`)
}
