import './base.css';
import './toggle.css';
import './statusbar.css';
