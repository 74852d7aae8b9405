/**
 * The address tables themselves: strict parsing of resolver answers, embedded-IPv4 extraction,
 * and docs/security.md staying in step with the code's tables.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { IPV4_RULES, IPV6_RULES, inspectAddress, parseIpAddress } from '../src/egress/address-policy.ts';
import { METADATA_NAMES } from '../src/egress/special-names.ts';

function inspect(text: string): { addressClass: string; embedded: string[] } {
  const address = parseIpAddress(text);
  assert.ok(address, `${text} should parse`);
  const verdict = inspectAddress(address);
  return { addressClass: verdict.addressClass, embedded: verdict.embedded.map((v4) => v4.toString()) };
}

describe('parseIpAddress', () => {
  it('accepts only canonical text forms', () => {
    for (const text of [
      '0177.0.0.1',
      '0x7f.0.0.1',
      '127.1',
      '2130706433',
      '127.000.0.1',
      '1.2.3.4.5',
      'localhost',
      '',
    ]) {
      assert.equal(parseIpAddress(text), undefined, text);
    }
  });

  it('refuses IPv6 zone ids', () => {
    assert.equal(parseIpAddress('fe80::1%eth0'), undefined);
    assert.equal(parseIpAddress('fe80::1%1'), undefined);
  });

  it('unwraps IPv4-mapped IPv6 to the IPv4 host', () => {
    assert.equal(parseIpAddress('::ffff:127.0.0.1')?.toString(), '127.0.0.1');
    assert.equal(parseIpAddress('::ffff:7f00:1')?.kind(), 'ipv4');
  });
});

describe('inspectAddress', () => {
  it('reads the IPv4 inside NAT64, 6to4 and IPv4-compatible addresses', () => {
    assert.deepEqual(inspect('64:ff9b::8.8.8.8'), { addressClass: 'global', embedded: ['8.8.8.8'] });
    assert.deepEqual(inspect('64:ff9b::10.0.0.1'), { addressClass: 'non_global', embedded: ['10.0.0.1'] });
    assert.deepEqual(inspect('2002:a9fe:a9fe::1'), {
      addressClass: 'metadata',
      embedded: ['169.254.169.254'],
    });
    assert.deepEqual(inspect('::7f00:1'), { addressClass: 'non_global', embedded: ['127.0.0.1'] });
  });

  it('de-obfuscates the Teredo client address (RFC 4380 §4)', () => {
    // Client bits 0x5601_5601 inverted are 169.254.169.254.
    const teredo = inspect('2001:0:4136:e378:8000:63bf:5601:5601');
    assert.deepEqual(teredo.embedded, ['65.54.227.120', '169.254.169.254']);
    assert.equal(teredo.addressClass, 'metadata');
  });

  it('checks every RFC 6052 position inside the local-use NAT64 prefix', () => {
    // A /48 operator prefix puts the IPv4 at bytes 6-7 and 9-10: here 169.254.169.254.
    const local = inspect('64:ff9b:1:a9fe:a9:fe00::');
    assert.ok(local.embedded.includes('169.254.169.254'));
    assert.equal(local.addressClass, 'metadata');
    // Zeros at the other positions are not taken for 0.0.0.0: a private embedding stays non-global.
    assert.equal(inspect('64:ff9b:1::a00:1').addressClass, 'non_global');
  });

  it('orders exceptions before the ranges that contain them', () => {
    assert.equal(inspect('192.0.0.9').addressClass, 'global');
    assert.equal(inspect('192.0.0.8').addressClass, 'non_global');
    assert.equal(inspect('2001:4:112::1').addressClass, 'global');
    assert.equal(inspect('2001:5::1').addressClass, 'non_global');
    assert.equal(inspect('169.254.169.254').addressClass, 'metadata');
    assert.equal(inspect('255.255.255.255').addressClass, 'unusable');
  });
});

describe('docs/security.md', () => {
  it('lists every range and metadata name the code blocks', async () => {
    const doc = await readFile(new URL('../../../docs/security.md', import.meta.url), 'utf8');
    for (const rule of [...IPV4_RULES, ...IPV6_RULES]) {
      assert.ok(doc.includes(`\`${rule.cidr}\``), `docs/security.md does not mention ${rule.cidr}`);
    }
    for (const name of METADATA_NAMES) assert.ok(doc.includes(`\`${name}\``), `docs miss ${name}`);
  });
});
