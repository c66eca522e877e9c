# Figure 6: mean runtime with standard-deviation error bars, ReLU (left) and
# sigmoid (right). Called by fig6.sh:
#   gnuplot -e "data='runtime.csv'; out='fig6.png'; iters='600'" fig6.gp
# runtime.csv columns: method,activation,mean_s,std_s,n,wall_mean_s
set terminal pngcairo size 1400,500 font ",11"
set output out
set datafile separator ","
set datafile columnheaders
set style fill solid 0.7 border -1
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set boxwidth 0.8
set yrange [0:*]
set ylabel sprintf("seconds for %s iterations", iters)
set grid ytics
unset key
name(m) = m eq "sgd" ? "SGD" : m eq "sgdm" ? "SGDM" : m eq "adam" ? "Adam" : m eq "2s" ? "2S-RADMM" : "3S-RADMM"
set multiplot layout 1,2 title "Runtime, 3-layer residual networks, Wine Quality (red): mean +- std"
# runtime.csv lists the five ReLU rows, then the five sigmoid rows.
set title "ReLU"
plot data every ::0::4 using 3:4:xtic(name(strcol(1))) lc rgb "#4c72b0"
set title "sigmoid"
plot data every ::5::9 using 3:4:xtic(name(strcol(1))) lc rgb "#dd8452"
unset multiplot
