import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { CompressionTypes } from 'kafkajs';
import { guardedCodec, gzipCodec, KafkajsCodec, lz4Codec, snappyCodec, UNDECODABLE_CONTINUATION, UNDECODABLE_HEADER, zstdCodec } from './kafka-codecs';

// The real interop (Java client, kcat, each codec both ways) is test/e2e/kafka-interop.e2e.spec.ts;
// these check the codecs' edges without a broker. Seed pinned; BACKSTOP_FC_RUNS=N for a bigger run.
const runs = Number(process.env.BACKSTOP_FC_RUNS ?? 60);
const seed = process.env.BACKSTOP_FC_RUNS ? Date.now() : 1414;

const codecs: [string, KafkajsCodec][] = [
  ['gzip', gzipCodec],
  ['snappy', snappyCodec],
  ['lz4', lz4Codec],
  ['zstd', zstdCodec],
];

/** Payloads that compress well and ones that do not, across the codecs' block boundaries. */
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 200_000 }),
  fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 8_000 })).map(([s, n]) => Buffer.from(s.repeat(n))),
);

describe('Kafka codecs', () => {
  it.each(codecs)('%s: decompress(compress(x)) = x for any bytes, across block boundaries', async (_name, codec) => {
    await fc.assert(
      fc.asyncProperty(payload, async (bytes) => {
        const buffer = Buffer.from(bytes);
        const back = await codec.decompress(await codec.compress({ buffer }));
        expect(back.equals(buffer)).toBe(true);
      }),
      { numRuns: runs, seed },
    );
  });

  it('snappy: reads raw snappy as well as the xerial framing the Java client writes', async () => {
    const text = Buffer.from('raw snappy without the xerial header '.repeat(50));
    const raw = Buffer.from((require('snappyjs') as { compress(b: Uint8Array): Uint8Array }).compress(text));
    expect((await snappyCodec.decompress(raw)).equals(text)).toBe(true);
    const framed = await snappyCodec.compress({ buffer: text });
    expect(framed.subarray(0, 8)).toEqual(Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]));
  });

  it('lz4: writes frames with independent 64 KiB blocks and a correct header checksum', async () => {
    const framed = await lz4Codec.compress({ buffer: Buffer.alloc(150_000, 7) });
    expect(framed.readUInt32LE(0)).toBe(0x184d2204);
    expect(framed[4]).toBe(0x60);
    expect(framed[5]).toBe(0x40);
    const xxh32 = require('lz4js/xxh32.js') as { hash(seed: number, src: Uint8Array, index: number, length: number): number };
    expect(framed[6]).toBe((xxh32.hash(0, framed, 4, 2) >>> 8) & 0xff);
  });

  it('refuses a decompression bomb (80 MiB of zeros) instead of filling the heap', async () => {
    const zeros = Buffer.alloc(80 * 1024 * 1024);
    await expect(gzipCodec.decompress(gzipSync(zeros))).rejects.toThrow(/larger than|maxOutputLength|Cannot create a Buffer/);
    await expect(zstdCodec.decompress(await zstdCodec.compress({ buffer: zeros }))).rejects.toThrow(/zstd: batch decompresses to more than/);
    // lz4 and snappy state the size up front: a frame / block claiming 1 GiB is refused before any work.
    const lz4Claim = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x68, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0x00, 0, 0, 0, 0]);
    await expect(lz4Codec.decompress(lz4Claim)).rejects.toThrow(/lz4: batch claims up to 1073741824 bytes/);
    const snappyClaim = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00]);
    await expect(snappyCodec.decompress(snappyClaim)).rejects.toThrow(/uncompressed length of 1073741824 is too big/);
  });
});

/** A v2 record batch header + `records` as kafkajs hands it to a codec: a slice of the fetch buffer. */
function sliceAfterBatchHeader(type: number, count: number, records: Buffer, firstOffset = 42n, magic = 2): Buffer {
  const header = Buffer.alloc(61);
  header.writeBigInt64BE(firstOffset, 0);
  header.writeInt32BE(49 + records.length, 8);
  header.writeInt8(magic, 16);
  header.writeInt16BE(type, 21);
  header.writeInt32BE(count - 1, 23);
  header.writeInt32BE(count, 57);
  const whole = Buffer.concat([Buffer.alloc(13), header, records]);
  return whole.subarray(13 + 61);
}

/** Decodes records with kafkajs's own decoder, as its consumer would. */
function kafkajsRecords(buffer: Buffer, count: number) {
  const Decoder = require('kafkajs/src/protocol/decoder');
  const RecordDecoder = require('kafkajs/src/protocol/recordBatch/record/v0/decoder');
  const decoder = new Decoder(buffer);
  const out: { offset: string; value: Buffer | null; headers: Record<string, Buffer> }[] = [];
  for (let i = 0; i < count; i += 1) {
    out.push(RecordDecoder(new Decoder(decoder.readVarIntBytes()), { firstOffset: '42', firstTimestamp: '0', magicByte: 2 }));
  }
  return out;
}

describe('guardedCodec: a batch that cannot be decoded', () => {
  const failing: KafkajsCodec = {
    compress: async ({ buffer }) => buffer,
    decompress: async () => {
      throw new Error('boom');
    },
  };

  it('becomes one record per offset: the first carries the raw bytes and why, the rest are fillers', async () => {
    const raw = Buffer.from('these bytes are not a snappy stream');
    const out = await guardedCodec(CompressionTypes.Snappy, failing).decompress(sliceAfterBatchHeader(CompressionTypes.Snappy, 3, raw));
    const records = kafkajsRecords(out, 3);
    expect(records.map((r) => r.offset)).toEqual(['42', '43', '44']);
    expect(records[0].value?.equals(raw)).toBe(true);
    expect(JSON.parse(records[0].headers[UNDECODABLE_HEADER].toString())).toEqual({ codec: 'snappy', reason: 'snappy: boom', firstOffset: '42', records: 3 });
    expect(records.slice(1).map((r) => r.headers[UNDECODABLE_HEADER].toString())).toEqual([UNDECODABLE_CONTINUATION, UNDECODABLE_CONTINUATION]);
  });

  it('also catches bytes that decompress but are not the records the batch header counts', async () => {
    const notRecords = await zstdCodec.compress({ buffer: Buffer.from([0x7f, 0x01]) });
    const out = await guardedCodec(CompressionTypes.ZSTD, zstdCodec).decompress(sliceAfterBatchHeader(CompressionTypes.ZSTD, 2, notRecords));
    const [first] = kafkajsRecords(out, 2);
    expect(JSON.parse(first.headers[UNDECODABLE_HEADER].toString()).reason).toMatch(/^zstd: .*does not fit the decompressed batch/);
  });

  it('covers codec ids no client defines yet (5..7)', async () => {
    const out = await guardedCodec(6, undefined).decompress(sliceAfterBatchHeader(6, 1, Buffer.from('?')));
    expect(JSON.parse(kafkajsRecords(out, 1)[0].headers[UNDECODABLE_HEADER].toString()).reason).toMatch(/unknown\(6\).*not supported/);
  });

  it('rethrows when the bytes before it are not a v2 batch header it can trust (no guessing)', async () => {
    await expect(guardedCodec(CompressionTypes.LZ4, failing).decompress(sliceAfterBatchHeader(CompressionTypes.LZ4, 1, Buffer.from('x'), 0n, 1))).rejects.toThrow('boom');
    await expect(guardedCodec(CompressionTypes.LZ4, failing).decompress(sliceAfterBatchHeader(CompressionTypes.GZIP, 1, Buffer.from('x')))).rejects.toThrow('boom');
    await expect(guardedCodec(CompressionTypes.LZ4, failing).decompress(Buffer.from('x'))).rejects.toThrow('boom');
  });

  it('passes good batches through untouched', async () => {
    const buffer = Buffer.from('abc'.repeat(100));
    const compressed = await lz4Codec.compress({ buffer });
    const out = await guardedCodec(CompressionTypes.LZ4, lz4Codec).decompress(compressed);
    expect(out.equals(buffer)).toBe(true);
  });
});
