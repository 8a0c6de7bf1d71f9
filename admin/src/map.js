// The map: one polygon per H3 cell of `/assignments/stats`, coloured by what most of its tours
// are. No base tiles: the page works offline and loads nothing from elsewhere.
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';

const COLOURS = { assigned: '#2e8b57', unassignable: '#c0392b', pending: '#e6a23c' };

/** The status that colours a cell: the most frequent, ties to the more urgent one. */
export function dominant(cell) {
  const order = ['unassignable', 'pending', 'assigned'];
  return order.reduce((best, s) => (cell[s] > cell[best] ? s : best), order[0]);
}

export class CellMap {
  constructor(element) {
    this.map = L.map(element, { zoomControl: true, attributionControl: false, worldCopyJump: true });
    this.map.setView([20, 0], 2);
    this.layer = L.layerGroup().addTo(this.map);
    this.fitted = false;
  }

  /** Draws `cells` (rows of `/assignments/stats`), replacing what was drawn. */
  show(cells) {
    this.layer.clearLayers();
    const bounds = [];
    for (const cell of cells) {
      const status = dominant(cell);
      const polygon = L.polygon(cell.boundary, {
        color: COLOURS[status],
        fillColor: COLOURS[status],
        fillOpacity: 0.55,
        weight: 1,
        className: `cell cell-${status}`,
      });
      polygon.bindTooltip(
        `${cell.cell}: ${cell.assigned} assigned, ${cell.unassignable} unassignable, ${cell.pending} pending`,
      );
      polygon.addTo(this.layer);
      bounds.push(...cell.boundary);
    }
    if (bounds.length && !this.fitted) {
      this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 13 });
      this.fitted = true;
    }
  }

  invalidate() {
    this.map.invalidateSize();
  }
}
