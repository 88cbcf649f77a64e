/**
 * What one of nodemailer's DataStreams (the dot-stuffing stream a relayed message leaves through)
 * emits for some input chunks, chunk by chunk as its pipe to the socket takes them, with its byte
 * counters: for the tests of the shims mailroute puts on it.
 */
export interface DataStreamLike extends NodeJS.ReadWriteStream {
  inByteCount: number;
  outByteCount: number;
}

export async function dataStreamOutput(stream: DataStreamLike, chunks: readonly Buffer[]): Promise<{ parts: Buffer[]; inBytes: number; outBytes: number }> {
  const parts: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => parts.push(chunk));
  const ended = new Promise((resolve) => stream.on("end", resolve));
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await ended;
  return { parts, inBytes: stream.inByteCount, outBytes: stream.outByteCount };
}
