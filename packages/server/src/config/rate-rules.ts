/**
 * @module config/rate-rules
 * The rate limiter's rules as a configuration asks for them: the defaults per key and the
 * classes tokens may name (a class's unset fields keep the defaults).
 */
import type { ClassLimitName, RateClasses, RateLimits, RateRule } from '../limits/rate-limiter.ts';
import type { Config } from './config.ts';

/** The rate classes of a configuration, as rules (a class's unset fields keep the defaults). */
export function rateClasses(config: Config): RateClasses {
  const classes: Record<string, Partial<Record<ClassLimitName, RateRule>>> = {};
  for (const [name, rate] of Object.entries(config.rateClasses)) {
    const windowMs = rate.windowMs ?? config.rateLimits.windowMs;
    const rules: Partial<Record<ClassLimitName, RateRule>> = {};
    if (rate.requestsPerWindow !== undefined)
      rules.requestsPerToken = { max: rate.requestsPerWindow, windowMs };
    if (rate.wsMessagesPerWindow !== undefined)
      rules.wsMessagesPerToken = { max: rate.wsMessagesPerWindow, windowMs };
    if (rate.sessionsPerWindow !== undefined)
      rules.sessionsPerToken = { max: rate.sessionsPerWindow, windowMs };
    classes[name] = rules;
  }
  return classes;
}

/** The rate limits a configuration asks for. */
export function rateLimits(config: Config): RateLimits {
  const rates = config.rateLimits;
  const rule = (max: number) => ({ max, windowMs: rates.windowMs });
  return {
    requestsPerToken: rule(rates.requestsPerToken),
    requestsPerIp: rule(rates.requestsPerIp),
    wsMessagesPerToken: rule(rates.wsMessagesPerToken),
    sessionsPerToken: rule(rates.sessionsPerToken),
    authFailuresPerIp: rule(rates.authFailuresPerIp),
  };
}
