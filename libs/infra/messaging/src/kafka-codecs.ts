import { randomBytes } from 'node:crypto';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Decompress as ZstdDecompress } from 'fzstd';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';

// kafkajs decodes only gzip by itself; desks' Java and librdkafka producers commonly use snappy, lz4
// or zstd, and a batch kafkajs cannot decode crashes its consumer (issue 14). These codecs are pure
// JS or WASM shipped inside npm packages, so nothing is compiled or downloaded at install time.
const snappy = require('snappyjs') as { compress(b: Uint8Array): Uint8Array; uncompress(b: Uint8Array, maxLength?: number): Uint8Array };
const lz4 = require('lz4js') as {
  decompress(src: Uint8Array, maxSize?: number): Uint8Array;
  decompressBound(src: Uint8Array): number;
  compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Int32Array): number;
  compressBound(n: number): number;
};
const xxh32 = require('lz4js/xxh32.js') as { hash(seed: number, src: Uint8Array, index: number, length: number): number };

export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];

export function compressionType(name: KafkaCompression): CompressionTypes {
  switch (name) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      return CompressionTypes.Snappy;
    case 'lz4':
      return CompressionTypes.LZ4;
    case 'zstd':
      return CompressionTypes.ZSTD;
    default: {
      const exhaustive: never = name;
      throw new Error(`unknown compression ${String(exhaustive)}`);
    }
  }
}

/** What kafkajs expects of a codec: compress gets an Encoder (its bytes in .buffer). */
export interface KafkajsCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

// ---- snappy: Kafka's Java client writes snappy-java's "xerial" framing; librdkafka reads both. ----
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_BLOCK_BYTES = 32 * 1024; // snappy-java's default block size
const MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024; // a decompression bomb stops here, not in the heap

export const snappyCodec: KafkajsCodec = {
  async compress({ buffer }) {
    const parts: Buffer[] = [XERIAL_MAGIC, int32(1), int32(1)];
    for (let i = 0; i < buffer.length; i += XERIAL_BLOCK_BYTES) {
      const block = Buffer.from(snappy.compress(buffer.subarray(i, i + XERIAL_BLOCK_BYTES)));
      parts.push(int32(block.length), block);
    }
    return Buffer.concat(parts);
  },
  async decompress(buffer) {
    if (buffer.length < 16 || !buffer.subarray(0, 8).equals(XERIAL_MAGIC)) {
      return Buffer.from(snappy.uncompress(buffer, MAX_DECOMPRESSED_BYTES));
    }
    const out: Buffer[] = [];
    let total = 0;
    for (let offset = 16; offset < buffer.length; ) {
      if (offset + 4 > buffer.length) throw new Error('snappy: truncated xerial block header');
      const size = buffer.readInt32BE(offset);
      offset += 4;
      if (size < 0 || offset + size > buffer.length) throw new Error('snappy: xerial block runs past the batch');
      const block = Buffer.from(snappy.uncompress(buffer.subarray(offset, offset + size), MAX_DECOMPRESSED_BYTES));
      total += block.length;
      if (total > MAX_DECOMPRESSED_BYTES) throw new Error(`snappy: batch decompresses to more than ${MAX_DECOMPRESSED_BYTES} bytes`);
      out.push(block);
      offset += size;
    }
    return Buffer.concat(out);
  },
};

// ---- lz4: the LZ4 frame format (what Kafka clients write since message format v1). ----
const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_BYTES = 64 * 1024; // the Java client's default block size (BD = 4)

export const lz4Codec: KafkajsCodec = {
  async compress({ buffer }) {
    // Independent 64 KiB blocks (FLG bit 5): the Java client's reader decodes each block on its own.
    const header = Buffer.alloc(7);
    header.writeUInt32LE(LZ4_MAGIC, 0);
    header[4] = 0x60; // version 01, block independence
    header[5] = 0x40; // max block size 64 KiB
    header[6] = (xxh32.hash(0, header, 4, 2) >>> 8) & 0xff;
    const parts: Buffer[] = [header];
    const scratch = new Uint8Array(lz4.compressBound(LZ4_BLOCK_BYTES));
    for (let i = 0; i < buffer.length; i += LZ4_BLOCK_BYTES) {
      const length = Math.min(LZ4_BLOCK_BYTES, buffer.length - i);
      const size = lz4.compressBlock(buffer, scratch, i, length, new Int32Array(1 << 16));
      if (size === 0 || size >= length) {
        parts.push(uint32le(0x80000000 | length), buffer.subarray(i, i + length)); // stored uncompressed
      } else {
        parts.push(uint32le(size), Buffer.from(scratch.subarray(0, size)));
      }
    }
    parts.push(uint32le(0)); // end mark
    return Buffer.concat(parts);
  },
  async decompress(buffer) {
    const bound = lz4.decompressBound(buffer);
    if (bound > MAX_DECOMPRESSED_BYTES) throw new Error(`lz4: batch claims up to ${bound} bytes decompressed; the limit is ${MAX_DECOMPRESSED_BYTES}`);
    return Buffer.from(lz4.decompress(buffer, bound));
  },
};

// ---- zstd: fzstd (pure JS) decodes streamed frames without a content size, as Java writes them;
// zstd-wasm (WASM inside the npm package) encodes. ----
let zstdEncoder: Promise<(b: Uint8Array, level: number) => Uint8Array> | undefined;
function loadZstdEncoder() {
  zstdEncoder ??= (async () => {
    const wasm = require('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(b: Uint8Array, level: number): Uint8Array };
    await wasm.init();
    return wasm.compress;
  })();
  return zstdEncoder;
}

export const zstdCodec: KafkajsCodec = {
  async compress({ buffer }) {
    const compress = await loadZstdEncoder();
    return Buffer.from(compress(buffer, 3)); // level 3: zstd's and the Java client's default
  },
  async decompress(buffer) {
    // Streamed, so a small batch that expands without end is refused at the cap, not in the heap.
    const chunks: Buffer[] = [];
    let total = 0;
    const stream = new ZstdDecompress((data) => {
      total += data.length;
      if (total > MAX_DECOMPRESSED_BYTES) throw new Error(`zstd: batch decompresses to more than ${MAX_DECOMPRESSED_BYTES} bytes`);
      chunks.push(Buffer.from(data));
    });
    stream.push(buffer, true);
    return Buffer.concat(chunks);
  },
};

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
export const gzipCodec: KafkajsCodec = {
  async compress({ buffer }) {
    return gzipAsync(buffer);
  },
  async decompress(buffer) {
    return gunzipAsync(buffer, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
  },
};

// ---- A batch that cannot be decoded is turned into records the consumer can dead-letter. ----

/**
 * Records made from a batch that could not be decoded carry this header (name random per process,
 * so no producer can forge it). The first record holds the batch's raw bytes and the reason; the
 * others only fill the batch's offsets so the consumer commits past it.
 */
export const UNDECODABLE_HEADER = `x-backstop-undecodable-${randomBytes(8).toString('hex')}`;
export const UNDECODABLE_CONTINUATION = 'continuation';

export interface UndecodableBatch {
  readonly codec: string;
  readonly reason: string;
  readonly firstOffset: string;
  readonly records: number;
}

const CODEC_NAMES: Record<number, string> = { 1: 'gzip', 2: 'snappy', 3: 'lz4', 4: 'zstd', 5: 'unknown(5)', 6: 'unknown(6)', 7: 'unknown(7)' };
const RECORDS_MAX = 1_000_000;

/**
 * Wraps a codec so that a batch it cannot decode (corrupt, unsupported, or not records once
 * decompressed) becomes `count` stand-in records instead of an exception: kafkajs would otherwise
 * crash the consumer on that batch and never get past it. kafkajs hands the codec a slice of the
 * fetch response, so the batch header (v2 layout, fixed) sits just before it: we read the record
 * count there and check magic and codec bits to be sure of the layout; if they do not match we
 * rethrow (the consumer restarts and reports not-ready instead).
 */
export function guardedCodec(type: number, inner: KafkajsCodec | undefined): KafkajsCodec {
  const codec = CODEC_NAMES[type] ?? `unknown(${type})`;
  return {
    compress: (encoder) => {
      if (!inner) throw new Error(`compression ${codec} is not supported`);
      return inner.compress(encoder);
    },
    async decompress(buffer) {
      const header = batchHeaderBefore(buffer, type);
      let failure: string;
      try {
        if (!inner) throw new Error(`compression codec ${codec} is not supported by this consumer`);
        const out = await inner.decompress(buffer);
        if (header) checkRecords(out, header.count);
        return out;
      } catch (err) {
        failure = `${codec}: ${(err as Error).message ?? String(err)}`;
        if (!header) throw err;
      }
      const info: UndecodableBatch = { codec, reason: failure, firstOffset: header.firstOffset, records: header.count };
      return standInRecords(header.count, buffer, JSON.stringify(info));
    },
  };
}

/** Registers snappy, lz4, zstd (and a guarded gzip) with kafkajs, once per process. */
let registered = false;
export function registerKafkaCodecs(): void {
  if (registered) return;
  registered = true;
  const codecs = CompressionCodecs as unknown as Record<number, () => KafkajsCodec>;
  const guarded: Record<number, KafkajsCodec> = {
    [CompressionTypes.GZIP]: guardedCodec(CompressionTypes.GZIP, gzipCodec),
    [CompressionTypes.Snappy]: guardedCodec(CompressionTypes.Snappy, snappyCodec),
    [CompressionTypes.LZ4]: guardedCodec(CompressionTypes.LZ4, lz4Codec),
    [CompressionTypes.ZSTD]: guardedCodec(CompressionTypes.ZSTD, zstdCodec),
    5: guardedCodec(5, undefined),
    6: guardedCodec(6, undefined),
    7: guardedCodec(7, undefined),
  };
  for (const [type, codec] of Object.entries(guarded)) codecs[Number(type)] = () => codec;
}

/** Test hook: replace the decoder of one codec (e.g. with one that fails); returns the restore. */
export function overrideKafkaCodecForTest(type: CompressionTypes, inner: KafkajsCodec | undefined): () => void {
  registerKafkaCodecs();
  const codecs = CompressionCodecs as unknown as Record<number, () => KafkajsCodec>;
  const before = codecs[type];
  const codec = guardedCodec(type, inner);
  codecs[type] = () => codec;
  return () => {
    codecs[type] = before;
  };
}

function batchHeaderBefore(buffer: Buffer, type: number): { count: number; firstOffset: string } | undefined {
  // Record batch v2 from its start: firstOffset 0..8, length 8..12, leaderEpoch 12..16, magic 16,
  // crc 17..21, attributes 21..23, lastOffsetDelta 23..27, timestamps, producer id/epoch,
  // firstSequence 53..57, record count 57..61, records from 61.
  const start = buffer.byteOffset - 61;
  if (start < 0) return undefined;
  const whole = Buffer.from(buffer.buffer, start, 61);
  const magic = whole.readInt8(16);
  const attributes = whole.readInt16BE(21);
  const lastOffsetDelta = whole.readInt32BE(23);
  const count = whole.readInt32BE(57);
  if (magic !== 2 || (attributes & 0x07) !== type) return undefined;
  if (count <= 0 || count > RECORDS_MAX || count > lastOffsetDelta + 1) return undefined;
  return { count, firstOffset: whole.readBigInt64BE(0).toString() };
}

/** Walks `count` length-prefixed records; throws if they do not fit the decompressed bytes. */
function checkRecords(buffer: Buffer, count: number): void {
  let offset = 0;
  for (let i = 0; i < count; i += 1) {
    const [length, next] = readVarint(buffer, offset);
    if (length < 0 || next + length > buffer.length) throw new Error(`record ${i} of ${count} does not fit the decompressed batch`);
    offset = next + length;
  }
}

function readVarint(buffer: Buffer, offset: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (let i = offset; i < buffer.length && shift <= 28; i += 1) {
    const byte = buffer[i];
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [(result >>> 1) ^ -(result & 1), i + 1];
    shift += 7;
  }
  throw new Error('truncated varint in the decompressed batch');
}

function standInRecords(count: number, raw: Buffer, info: string): Buffer {
  const records: Buffer[] = [];
  for (let i = 0; i < count; i += 1) {
    const first = i === 0;
    const body = Buffer.concat([
      Buffer.from([0]), // attributes
      varint(0), // timestamp delta
      varint(i), // offset delta
      varint(-1), // null key
      first ? Buffer.concat([varint(raw.length), raw]) : varint(-1),
      varint(1),
      bytes(UNDECODABLE_HEADER),
      bytes(first ? info : UNDECODABLE_CONTINUATION),
    ]);
    records.push(varint(body.length), body);
  }
  return Buffer.concat(records);
}

function bytes(text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  return Buffer.concat([varint(b.length), b]);
}

function varint(value: number): Buffer {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  const out: number[] = [];
  while (zigzag > 0x7f) {
    out.push((zigzag & 0x7f) | 0x80);
    zigzag >>>= 7;
  }
  out.push(zigzag);
  return Buffer.from(out);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function uint32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
