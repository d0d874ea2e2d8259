// Small bar charts as inline SVG: enough for a dashboard, no charting library.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/**
 * bars: [{label, value, className?}] -> <svg> with a bar per entry, its value on top and
 * its label underneath. `title` is read by screen readers.
 */
export function barChart(bars, { title = "", width = 360, height = 170, labelEvery = 1 } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  const top = 16, bottom = 22, left = 4, right = 4;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const slot = (width - left - right) / Math.max(1, bars.length);
  const barWidth = Math.max(2, slot * 0.7);
  bars.forEach((bar, i) => {
    const h = ((height - top - bottom) * bar.value) / max;
    const x = left + i * slot + (slot - barWidth) / 2;
    const y = height - bottom - h;
    const rect = el("rect", { x, y, width: barWidth, height: Math.max(h, bar.value ? 1 : 0), rx: 2, class: `bar ${bar.className || ""}` });
    rect.append(el("title", {}, `${bar.label}: ${bar.value}`));
    svg.append(rect);
    if (bar.value) svg.append(el("text", { x: x + barWidth / 2, y: y - 3, "text-anchor": "middle", class: "value" }, bar.value));
    if (i % labelEvery === 0) svg.append(el("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, bar.label));
  });
  svg.append(el("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#c8d1dc" }));
  return svg;
}
