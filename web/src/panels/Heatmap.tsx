import { useEffect, useRef } from 'react';
import { COLORMAP_GLSL, HeatmapGrid, fillPast } from '../lib/heatmap';
import { live, onDraw } from '../store';
import type { BookHistory } from '../lib/types';
import { fmt } from '../lib/format';

const COLS = 240;
const ROWS = 128;
const COLUMN_MS = 250;

const VS = `#version 300 es
in vec2 pos;
out vec2 uv;
void main() { uv = (pos + 1.0) * 0.5; gl_Position = vec4(pos, 0.0, 1.0); }`;

const FS = `#version 300 es
precision highp float;
precision highp sampler2D;
uniform sampler2D grid;   // R32F, width = rows (price), height = cols (time): one texSubImage2D row per column
uniform float head;
uniform float cols;
uniform float vmax;
in vec2 uv;
out vec4 color;
${COLORMAP_GLSL}
void main() {
  float screenCol = floor(uv.x * cols);
  float ring = mod(head + 1.0 + screenCol, cols);
  float v = texture(grid, vec2(uv.y, (ring + 0.5) / cols)).r;
  float t = vmax > 0.0 ? log(1.0 + v) / log(1.0 + vmax) : 0.0;
  color = vec4(colormap(t), 1.0);
}`;

/** Bookmap-style liquidity heatmap: WebGL2, R32F ring-buffer texture, one column per 250 ms. */
export function Heatmap({ tick, pricePrecision }: { tick: number; pricePrecision: number }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const overlayRef = useRef<HTMLCanvasElement>(null);
  const tickRef = useRef(tick);
  tickRef.current = tick;
  const ppRef = useRef(pricePrecision);
  ppRef.current = pricePrecision;

  useEffect(() => {
    const canvas = canvasRef.current!;
    const testing = new URLSearchParams(location.search).has('e2e');
    const gl = canvas.getContext('webgl2', { preserveDrawingBuffer: testing, antialias: false });
    const hooks = ((window as unknown as { __qs?: Record<string, unknown> }).__qs ??= {});
    if (!gl) {
      canvas.replaceWith(Object.assign(document.createElement('p'), { className: 'muted', textContent: 'WebGL2 unavailable' }));
      return;
    }
    const compile = (type: number, src: string) => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) ?? 'shader');
      return s;
    };
    const prog = gl.createProgram()!;
    gl.attachShader(prog, compile(gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, compile(gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    gl.useProgram(prog);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, 'pos');
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    const tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    const grid = new HeatmapGrid(COLS, ROWS);
    const upload = () => gl.texImage2D(gl.TEXTURE_2D, 0, gl.R32F, ROWS, COLS, 0, gl.RED, gl.FLOAT, grid.data);
    upload();
    const u = (n: string) => gl.getUniformLocation(prog, n);
    gl.uniform1i(u('grid'), 0);
    gl.uniform1f(u('cols'), COLS);

    const resize = () => {
      const rect = canvas.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      for (const c of [canvas, overlayRef.current!]) {
        c.width = Math.max(1, Math.floor(rect.width * dpr));
        c.height = Math.max(1, Math.floor(rect.height * dpr));
      }
    };
    resize();
    const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => (resize(), render())) : null;
    ro?.observe(canvas);

    const render = () => {
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.uniform1f(u('head'), grid.head);
      gl.uniform1f(u('vmax'), grid.max);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      // overlay: best bid / ask lines and price labels
      const o = overlayRef.current!.getContext('2d');
      if (!o || grid.bucket === 0) return;
      const w = overlayRef.current!.width;
      const h = overlayRef.current!.height;
      o.clearRect(0, 0, w, h);
      const yOf = (p: number) => h - ((p - grid.lo) / (grid.bucket * ROWS)) * h;
      const bb = live.book.bids[0]?.[0];
      const ba = live.book.asks[0]?.[0];
      o.lineWidth = 1;
      if (bb !== undefined) {
        o.strokeStyle = '#26a69a';
        o.beginPath();
        o.moveTo(w * 0.9, yOf(bb));
        o.lineTo(w, yOf(bb));
        o.stroke();
      }
      if (ba !== undefined) {
        o.strokeStyle = '#ef5350';
        o.beginPath();
        o.moveTo(w * 0.9, yOf(ba));
        o.lineTo(w, yOf(ba));
        o.stroke();
      }
      o.fillStyle = '#9aa0aa';
      o.font = `${11 * (window.devicePixelRatio || 1)}px DejaVu Sans Mono, monospace`;
      o.fillText(fmt(grid.lo + grid.bucket * ROWS, ppRef.current), 4, 12 * (window.devicePixelRatio || 1));
      o.fillText(fmt(grid.lo, ppRef.current), 4, h - 4);
    };

    let lastColumn = 0;
    let lastKey = '';
    let past: BookHistory | null = null; // the recorded last minute, drawn once the live book is there
    let pastColumns = 0;
    const step = () => {
      const { bids, asks, key } = live.book;
      if (!bids.length || !asks.length) return;
      const now = performance.now();
      const history = past !== null && past.key === key ? past : null;
      if (now - lastColumn < COLUMN_MS && key === lastKey && !history) return;
      lastColumn = now;
      if (key !== lastKey || history) grid.bucket = 0; // new symbol (or its past): new window
      lastKey = key;
      if (grid.centre(bids, asks, tickRef.current)) upload();
      if (history) {
        past = null;
        pastColumns = fillPast(grid, history, COLUMN_MS);
        upload();
      }
      const col = grid.push(bids, asks);
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, grid.head, ROWS, 1, gl.RED, gl.FLOAT, col);
      render();
      hooks.heatmap = {
        cols: COLS,
        rows: ROWS,
        head: grid.head,
        lo: grid.lo,
        bucket: grid.bucket,
        max: grid.max,
        newest: Array.from(col),
        past: pastColumns,
        glError: gl.getError(),
      };
    };
    const off = onDraw((d) => {
      if (d.bookHistory) past = d.bookHistory;
      if (d.book || d.bookHistory) step();
    });
    return () => {
      off();
      ro?.disconnect();
    };
  }, []);

  return (
    <div className="panel heatmap" data-testid="heatmap">
      <div className="panel-head">
        <span>Liquidity heatmap</span>
      </div>
      <div className="heat-host">
        <canvas ref={canvasRef} data-testid="heatmap-canvas" />
        <canvas ref={overlayRef} className="overlay" />
      </div>
    </div>
  );
}
