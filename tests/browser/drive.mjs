// Drives the example web app in a headless browser, as a visitor would:
// log in through the form, fill the cart past the cookie budget with
// <lines> lines whose notes are <note length> characters of random text
// (which does not compress), log out. Checks what the browser itself
// stored and sent, and that it kept every session cookie the app set.
// Usage: node drive.mjs <chrome|firefox> <executable> <app base URL> <cookie name> <lines> <note length>
// Prints one line per step; exits 1 at the first failed check.
import puppeteer from 'puppeteer-core';
import { randomBytes } from 'node:crypto';

const [browserName, executablePath, base, NAME, lines, noteLength] = process.argv.slice(2);
if (!['chrome', 'firefox'].includes(browserName) || !executablePath || !base || !NAME
  || !(Number(lines) > 0) || !(Number(noteLength) > 0)) {
  console.error('usage: node drive.mjs <chrome|firefox> <executable> <app base URL> <cookie name> <lines> <note length>');
  process.exit(2);
}

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

// Puppeteer's own waits time out after 30 s each; this bounds the whole run.
setTimeout(() => {
  console.error('failed: the run took over 120 s');
  process.exit(1);
}, 120_000).unref();

const browser = await puppeteer.launch({
  browser: browserName,
  executablePath,
  headless: true,
  // Chromium: flags for a closed network and a root user (no sandbox).
  // Firefox: Puppeteer's own preferences already turn off its updates and
  // telemetry.
  args: browserName === 'chrome'
    ? ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
    : [],
});
try {
  const page = await browser.newPage();
  // Chromium also says why it refused a cookie (its DevTools protocol);
  // the check after each response below holds in both browsers.
  const refusedReasons = [];
  if (browserName === 'chrome') {
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.responseReceivedExtraInfo', (event) => {
      for (const cookie of event.blockedCookies || []) refusedReasons.push(cookie.blockedReasons.join(','));
    });
  }
  const sessionCookie = async () => (await browser.cookies()).find((c) => c.name === NAME);
  const nav = async () => page.$eval('nav', (element) => element.innerText);
  let cookiesSet = 0;
  let cookiesSuperseded = 0;

  // After a response from the app: when it set the session cookie, the
  // browser now holds that value (or none, for a deletion). A cookie the
  // browser refused leaves the previous one in place, and this fails.
  // `mustSet`: the step changes the session, so the response must set it
  // (Chromium joins several Set-Cookie headers with newlines, Firefox keeps
  // the last one; a browser applies the last of one name).
  // `superseded`: a later response (the redirect's) set the cookie again
  // before this could look, so the caller checks what this one set by
  // what the next request carried.
  function sessionCookieSet(response) {
    const setCookies = (response.headers()['set-cookie'] || '').split('\n');
    return setCookies.findLast((line) => line.startsWith(`${NAME}=`));
  }
  async function keptWhatWasSet(response, step, mustSet = false, superseded = false) {
    const set = sessionCookieSet(response);
    check(set !== undefined || !mustSet, `${step}: the response sets the session cookie`);
    if (set === undefined) return;
    if (superseded) {
      cookiesSuperseded += 1;
      return;
    }
    cookiesSet += 1;
    const value = set.slice(NAME.length + 1).split(';')[0];
    const held = await sessionCookie();
    const why = refusedReasons.length ? ` (Chromium: ${refusedReasons.join('; ')})` : '';
    if (value === '') {
      check(!held, `${step}: the browser deleted the cookie${why}`);
    } else {
      check(held && held.value === value,
        `${step}: the browser holds the cookie the app set (${NAME.length + value.length} bytes of name and value)${why}`);
    }
  }

  async function visit(path) {
    const response = await page.goto(`${base}${path}`);
    check(response.ok(), `GET ${path} answered ${response.status()}`);
    await keptWhatWasSet(response, `GET ${path}`);
  }

  // Submits a form by clicking `button`: the POST, which changes the
  // session, must get the app's answer to a valid form, a redirect (303)
  // that sets the cookie, and the browser follows it.
  async function submit(path, button) {
    const [response, landed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click(button),
    ]);
    check(response.status() === 303, `POST ${path} answered ${response.status()}, not 303`);
    // The cart after an add may change the session too (it takes a
    // one-time notice): the browser then holds that cookie, and the loop
    // below checks the add's by the cart's contents.
    const superseded = sessionCookieSet(landed) !== undefined;
    check(!superseded || path === '/cart/add', `the redirect after POST ${path} sets no cookie`);
    await keptWhatWasSet(response, `POST ${path}`, true, superseded);
    check(landed.ok(), `the redirect after POST ${path} answered ${landed.status()}`);
    await keptWhatWasSet(landed, `the redirect after POST ${path}`);
  }

  async function fill(selector, text) {
    await page.$eval(selector, (element, value) => { element.value = value; }, text);
  }

  await visit('/login');
  await fill('input[name=username]', 'alice');
  await fill('input[name=password]', 'demo');
  await submit('/login', 'form[action="/login"] button');
  check(page.url() === `${base}/`, `redirected home (at ${page.url()})`);
  let cookie = await sessionCookie();
  check(cookie, 'a session cookie stored after login');
  check(cookie.secure && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/',
    `Secure, HttpOnly, SameSite=Lax, Path=/ (got ${JSON.stringify(cookie)})`);
  check(cookie.expires > Date.now() / 1000, 'a persistent cookie');
  check((await nav()).includes('Signed in as alice'), 'signed in after the redirect');
  console.log(`login: ${NAME} stored (${NAME.length + cookie.value.length} bytes of name and value), signed in`);

  for (let line = 1; line <= Number(lines); line++) {
    await visit('/cart');
    await fill('input[name=sku]', `SKU-${line}`);
    await fill('textarea[name=note]', randomBytes(Number(noteLength)).toString('base64url').slice(0, Number(noteLength)));
    await submit('/cart/add', 'form[action="/cart/add"] button');
    // Only the POST's cookie has this line in the cart's index: the
    // redirect's request carried it, so the browser kept it.
    check((await page.content()).includes(`<td>SKU-${line}</td>`),
      `the cart after adding line ${line} lists it (the browser kept the POST's cookie)`);
  }
  await visit('/session');
  const dropped = (await page.$$('li.dropped')).length;
  const sent = Number(await page.$eval('#cookie-len', (element) => element.innerText));
  cookie = await sessionCookie();
  check(dropped > 0, 'cart lines dropped to fit the budget');
  check(sent === cookie.value.length, `the app read the cookie the browser holds (${sent} vs ${cookie.value.length} bytes)`);
  check((await nav()).includes('Signed in as alice'), 'still signed in with a full cart');
  console.log(`cart: ${dropped} line(s) dropped, ${NAME.length + cookie.value.length} bytes of name and value kept and sent, still signed in`);

  await submit('/logout', 'nav form[action="/logout"] button');
  check(page.url() === `${base}/`, `redirected home (at ${page.url()})`);
  check(!(await sessionCookie()), 'the cookie deleted at logout');
  check((await nav()).includes('Not signed in'), 'signed out');
  console.log('logout: cookie deleted, signed out');

  check(refusedReasons.length === 0, `no cookie refused (Chromium: ${refusedReasons.join('; ')})`);
  console.log(`every one of the ${cookiesSet} session cookies the app set was kept`
    + ` (${cookiesSuperseded} more, replaced by the cart page's own before they could be read, shown kept by the cart's contents)`);
} finally {
  await browser.close();
}
