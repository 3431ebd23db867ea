// The three browser engines the scenarios run in, behind one small page API,
// so that a scenario is written once and looped over engines:
//
//   chromium  Blink,  /usr/bin/chromium    through playwright-core (CDP)
//   firefox   Gecko,  /usr/bin/firefox-esr through puppeteer-core (WebDriver BiDi)
//   webkit    WebKitGTK (Safari's engine) through WebKitWebDriver and
//             selenium-webdriver (classic WebDriver), on an xvfb display
//
// An EnginePage opens a URL, evaluates a function in the page, fills and
// clicks form controls (through the page's DOM, alike in every engine), and
// takes a screenshot; waiting for a condition is the harness's waitFor, which
// polls evaluate.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** ENGINES lists every engine; ENGINE_TOOLS the programs each needs (see tools.mjs). */
export const ENGINES = ['chromium', 'firefox', 'webkit'];
export const ENGINE_TOOLS = {
  chromium: ['chromium'],
  firefox: ['firefox'],
  webkit: ['webkitdriver', 'xvfb-run'],
};

function stamp(line) {
  return `${new Date().toISOString()} ${line}`;
}

/**
 * EnginePage is one page in one engine. evaluate(fn, arg) runs fn(arg) in
 * the page's own world and returns its (JSON-like) result; goto(url)
 * returns once the document is parsed (DOMContentLoaded) or, in WebKit,
 * once the page has loaded; screenshot(file) saves a PNG; close() closes
 * the page (its connections go with it).
 */
export class EnginePage {
  constructor(engine, raw) {
    this.engine = engine;
    this.raw = raw;
    this.consoleLog = [];
  }

  /** closed reports whether the page can no longer be evaluated or shot. */
  get closed() {
    return false;
  }

  /**
   * fill types value into the input or textarea selector names, as a person
   * would: the control must be shown and editable (else it throws, as
   * Playwright's fill does), and the page hears `input` and `change`.
   */
  async fill(selector, value) {
    await this.evaluate(actOn, { selector, action: 'fill', value });
  }

  /**
   * click clicks the element selector names, as a person would: it must be
   * shown, enabled and, scrolled into view, the topmost element at its
   * centre (else it throws, as Playwright's click does); then it gets a
   * click, with the default action that follows (a submit button submits
   * its form).
   */
  async click(selector) {
    await this.evaluate(actOn, { selector, action: 'click' });
  }
}

/**
 * actOn runs in the page (any engine, so plain DOM only): it checks that the
 * element can be acted on and fills or clicks it. The function travels as
 * source and must not use anything from this module.
 */
function actOn({ selector, action, value }) {
  const el = document.querySelector(selector);
  if (!el) throw new Error(`${action} ${selector}: no such element`);
  el.scrollIntoView({ block: 'center', inline: 'center' });
  const r = el.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0) || getComputedStyle(el).visibility === 'hidden') {
    throw new Error(`${action} ${selector}: the element is not visible`);
  }
  if (el.disabled) throw new Error(`${action} ${selector}: the element is disabled`);
  if (action === 'fill') {
    if (!/^(INPUT|TEXTAREA)$/.test(el.tagName) || el.readOnly) throw new Error(`${selector} is not an editable input or textarea`);
    el.focus();
    el.value = value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
    return;
  }
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!top || (top !== el && !el.contains(top))) {
    throw new Error(`click ${selector}: another element is on top of it (${top ? top.tagName : 'nothing'})`);
  }
  el.click();
}

/**
 * DriverPage is what Playwright's and Puppeteer's pages share: the same
 * calls (isClosed, goto with waitUntil, evaluate, close) and the same
 * console and pageerror events.
 */
class DriverPage extends EnginePage {
  constructor(engine, raw) {
    super(engine, raw);
    raw.on('console', (m) => this.consoleLog.push(stamp(`${m.type()}: ${m.text()}`)));
    raw.on('pageerror', (e) => this.consoleLog.push(stamp(`pageerror: ${e.stack || e}`)));
  }

  get closed() {
    return this.raw.isClosed();
  }

  async goto(url) {
    // domcontentloaded: a page whose transport is a pending script (JSONP)
    // may not reach `load` while it polls.
    await this.raw.goto(url, { waitUntil: 'domcontentloaded' });
  }

  evaluate(fn, arg) {
    return this.raw.evaluate(fn, arg);
  }

  close() {
    return this.raw.close();
  }
}

/** PlaywrightPage: Chromium through playwright-core. */
export class PlaywrightPage extends DriverPage {
  constructor(raw) {
    super('chromium', raw);
    raw.on('crash', () => this.consoleLog.push(stamp('page crashed')));
  }

  screenshot(file) {
    return this.raw.screenshot({ path: file, fullPage: true, timeout: 5000 });
  }
}

/** PuppeteerPage: Firefox through puppeteer-core over WebDriver BiDi. */
export class PuppeteerPage extends DriverPage {
  constructor(raw) {
    super('firefox', raw);
  }

  async screenshot(file) {
    // Puppeteer's screenshot takes no timeout of its own.
    await Promise.race([this.raw.screenshot({ path: file, fullPage: true }), sleep(5000, undefined, { ref: false })]);
  }
}

/**
 * WebDriverPage: WebKitGTK's MiniBrowser through selenium-webdriver.
 * Classic WebDriver has no console events: a WebKit page's console is not
 * recorded (the page's own window.e2e record and the screenshot are).
 */
export class WebDriverPage extends EnginePage {
  constructor(driver) {
    super('webkit', driver);
    this.quit = false;
  }

  get closed() {
    return this.quit;
  }

  async goto(url) {
    // The session's page load strategy is "normal": this returns once WebKit
    // considers the page loaded (see Harness.webkit).
    await this.raw.get(url);
  }

  evaluate(fn, arg) {
    // The function travels as source, as Playwright and Puppeteer send it.
    return this.raw.executeScript(`return (${fn}).apply(null, arguments);`, ...(arg === undefined ? [] : [arg]));
  }

  async screenshot(file) {
    // WebKit's screenshot is the last frame it painted, and a page that has
    // not asked for an animation frame may not have painted for a while: the
    // demo page (scenario 7) was shot as first loaded, disconnected, after
    // it had connected and listed a message. Two animation frames make it
    // render the page as it is now.
    await Promise.race([
      this.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve())))).catch(() => {}),
      sleep(2000, undefined, { ref: false }),
    ]);
    const png = await Promise.race([this.raw.takeScreenshot(), sleep(5000, null, { ref: false })]);
    if (png) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, Buffer.from(png, 'base64'));
    }
  }

  async close() {
    // One session is one MiniBrowser with one page: the session goes.
    this.quit = true;
    await this.raw.quit();
  }
}
