import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_HINT, chainCurrencies, hasSessionHint, pickSymbol, setSessionHint } from './startup';

afterEach(() => {
  document.cookie = `${SESSION_HINT}=; Path=/; Max-Age=0`;
});

describe('startup decisions', () => {
  it('reads the session hint the server mirrors, and keeps it in step on sign-in and out', () => {
    expect(hasSessionHint('')).toBe(false);
    expect(hasSessionHint('a=1; qs_signed_in=1')).toBe(true);
    expect(hasSessionHint('qs_signed_in=')).toBe(false);
    expect(hasSessionHint('xqs_signed_in=1')).toBe(false);
    expect(hasSessionHint()).toBe(false);
    setSessionHint(true);
    expect(hasSessionHint()).toBe(true);
    setSessionHint(false);
    expect(hasSessionHint()).toBe(false);
  });

  it('starts a newcomer on BTC/USD, not on the alphabetically first market', () => {
    const symbols = ['ADA/USD', 'BTC/USD', 'ETH/USD', 'SOL/USD'];
    expect(pickSymbol(symbols, '')).toBe('BTC/USD');
    expect(pickSymbol(symbols, null)).toBe('BTC/USD');
    expect(pickSymbol(symbols, 'ETH/USD')).toBe('ETH/USD'); // asked for (URL, last visit)
    expect(pickSymbol(symbols, 'DOGE/USD')).toBe('BTC/USD'); // gone since
    expect(pickSymbol(['ADA/USD', 'XRP/USD'], '')).toBe('ADA/USD');
    expect(pickSymbol([], '')).toBe('');
  });

  it('knows which currencies have an option chain', () => {
    const chains = [
      { venue: 'sim', underlying: 'BTC/USD', currency: 'BTC' },
      { venue: 'deribit', underlying: 'ETH/USD', currency: 'ETH' },
    ];
    expect([...chainCurrencies(chains)].sort()).toEqual(['BTC', 'ETH']);
    expect([...chainCurrencies(chains, 'sim')]).toEqual(['BTC']);
    expect(chainCurrencies(undefined).has('ADA')).toBe(false);
  });
});
